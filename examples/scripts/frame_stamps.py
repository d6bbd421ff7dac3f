"""Pass camera frames through and log, per frame, when it was taken and when the script got it (µs)."""

import syntalos_mlink as syl

frames_in = syl.get_input_port("frame-in")
frames_out = syl.get_output_port("frame-out")
stamps_out = syl.get_output_port("tablerow-out")


def prepare():
    frames_in.on_data = forward
    # a TableRow stream names its columns and proposes where recorders put it
    stamps_out.set_metadata_value("table_header", ["frame_index", "frame_time_usec", "received_usec"])
    stamps_out.set_metadata_value("data_name_proposal", "events/frame-stamps")


def start():
    # the camera's metadata travels on with the frames
    frames_out.set_metadata_value("framerate", frames_in.metadata["framerate"])
    frames_out.set_metadata_value_size("size", frames_in.metadata["size"])


def forward(frame):
    stamps_out.submit([frame.index, frame.time_usec, syl.time_since_start_usec()])
    frames_out.submit(frame)


def run():
    while syl.is_running():
        syl.await_data()

/*
 * uno_bridge: run an Arduino Uno firmware image (Intel HEX) in simavr, with UART0 on a pty and a line-based
 * TCP control socket to drive input pins and ADC channels and to watch output pins.
 *
 * hwlink's tests run the genuine StandardFirmata this way (recipe: shared/reference/firmata-and-nidaq.md §8).
 *
 *   uno_bridge [--free] [--slow-boot] [--ctrl-port N] FIRMWARE.hex
 *
 * Prints "READY pty=/dev/pts/N ctrl=PORT" on stderr once the pty and the control socket exist.
 * Simulated time is paced to wall-clock time (100 µs ticks) unless --free is given; by default the boot runs
 * unpaced until the firmware's first UART byte ("fast boot", skipping the version LED blink).
 *
 * Control commands (one per line; each gets one reply line):
 *   set D2 1        drive digital pin 2 (Arduino numbering 0..19) high or low from outside -> "ok"
 *   adc 0 2500      put 2500 mV on ADC channel 0 (AVCC = 5000 mV)                       -> "ok"
 *   get 13          -> "pin 13 port=1 ddr=1 pin=1"
 *   pwm 9           -> "pwm 9 OCR"  (the output-compare register of the pin's timer)
 *   peek 0xb4 2     -> "peek 0xb4 80 00" (data space bytes, hex)
 *   time            -> "time sim_us=... wall_us=..."
 * Asynchronous lines: "ev 13 1 sim_us=... wall_us=..." whenever a pin configured as output changes level.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "avr_adc.h"
#include "avr_extint.h"
#include "avr_ioport.h"
#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_hex.h"
#include "sim_irq.h"
#include "sim_time.h"

#define FREQUENCY 16000000UL
#define TICK_USEC 100 /* pacing and UART receive granularity */
#define MAX_BEHIND_NS 20000000LL /* further behind than this: forget the debt instead of racing */

/* Arduino Uno pin -> (port letter, bit) */
static const char PIN_PORT[20] = {'D', 'D', 'D', 'D', 'D', 'D', 'D', 'D', 'B', 'B',
                                  'B', 'B', 'B', 'B', 'C', 'C', 'C', 'C', 'C', 'C'};
static const int PIN_BIT[20] = {0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5};

static avr_t *avr;
/* UART0 <-> pty. simavr's own uart_pty part feeds host bytes to the UART only once per simulated millisecond,
 * which would quantize every command's effect to 1 ms; this bridge feeds them every tick instead. */
static int pty_master = -1;
static char pty_name[64];
static int uart_has_room = 1;
static avr_irq_t *uart_input;
static uint8_t rx_bytes[256];
static ssize_t rx_length, rx_done;
static int paced = 1;
static int fast_boot = 1;
static volatile int booted;
static long long wall_origin_ns;      /* wall time that corresponds to simulated time 0 */
static int last_level[20];

/* Commands are executed on the simulation thread, between instructions. */
static pthread_mutex_t command_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t command_done = PTHREAD_COND_INITIALIZER;
static volatile int command_pending;
static char command_text[512];
static char command_reply[600];

static pthread_mutex_t client_lock = PTHREAD_MUTEX_INITIALIZER;
static int client_fd = -1;

static long long wall_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static long long sim_ns(void) { return (long long)(avr->cycle * 1000000000ULL / FREQUENCY); }

static void send_client(const char *format, ...) {
    char line[700];
    va_list args;
    va_start(args, format);
    int length = vsnprintf(line, sizeof line - 1, format, args);
    va_end(args);
    if (length < 0) return;
    if (length > (int)sizeof line - 2) length = sizeof line - 2;
    line[length++] = '\n';
    pthread_mutex_lock(&client_lock);
    if (client_fd >= 0) send(client_fd, line, length, MSG_NOSIGNAL);
    pthread_mutex_unlock(&client_lock);
}

static int io_address(char port, int offset) { /* offset: 0 PIN, 1 DDR, 2 PORT */
    int base = port == 'B' ? 0x23 : port == 'C' ? 0x26 : 0x29;
    return base + offset;
}

static void pin_changed(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq;
    int pin = (int)(intptr_t)param;
    int ddr = (avr->data[io_address(PIN_PORT[pin], 1)] >> PIN_BIT[pin]) & 1;
    int level = value ? 1 : 0;
    if (!ddr || level == last_level[pin]) return;
    last_level[pin] = level;
    send_client("ev %d %d sim_us=%lld wall_us=%lld", pin, level, sim_ns() / 1000, wall_ns() / 1000);
}

static void uart_output(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq; (void)param;
    uint8_t byte = (uint8_t)value;
    if (write(pty_master, &byte, 1) < 0) { /* nobody reads the pty and its buffer is full: the byte is lost */ }
    if (!booted) {
        booted = 1;
        wall_origin_ns = wall_ns() - sim_ns();
    }
}

static void uart_xon_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq; (void)value; (void)param;
    uart_has_room = 1;
}

static void uart_xoff_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq; (void)value; (void)param;
    uart_has_room = 0;
}

/* Hands host bytes to the UART while it has room (it raises XOFF when its receive FIFO is full). */
static void feed_uart(void) {
    while (uart_has_room) {
        if (rx_done == rx_length) {
            rx_length = read(pty_master, rx_bytes, sizeof rx_bytes);
            rx_done = 0;
            if (rx_length <= 0) {
                rx_length = 0;
                return;
            }
        }
        avr_raise_irq(uart_input, rx_bytes[rx_done++]);
    }
}

static void open_uart_pty(void) {
    int slave; /* kept open for the process's lifetime: with no slave open the master reads EIO */
    if (openpty(&pty_master, &slave, pty_name, NULL, NULL) < 0) {
        perror("openpty");
        exit(1);
    }
    struct termios settings;
    tcgetattr(pty_master, &settings);
    cfmakeraw(&settings);
    tcsetattr(pty_master, TCSANOW, &settings);
    tcgetattr(slave, &settings);
    cfmakeraw(&settings);
    tcsetattr(slave, TCSANOW, &settings);
    fcntl(pty_master, F_SETFL, fcntl(pty_master, F_GETFL) | O_NONBLOCK);
    uint32_t flags = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~AVR_UART_FLAG_STDIO;
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    uart_input = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), uart_output, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), uart_xon_hook, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), uart_xoff_hook, NULL);
}

/* Every tick of simulated time: feed the UART, then wait for wall-clock time to catch up (unless free-running). */
static avr_cycle_count_t pace(avr_t *core, avr_cycle_count_t when, void *param) {
    (void)core; (void)param;
    feed_uart();
    if (paced && (booted || !fast_boot)) {
        long long ahead = sim_ns() - (wall_ns() - wall_origin_ns);
        if (ahead > 0) {
            struct timespec pause = {ahead / 1000000000LL, ahead % 1000000000LL};
            nanosleep(&pause, NULL);
        } else if (-ahead > MAX_BEHIND_NS) {
            wall_origin_ns = wall_ns() - sim_ns();
        }
    }
    return when + avr_usec_to_cycles(avr, TICK_USEC);
}

static int parse_pin(const char *text) {
    int offset = 0;
    if (text[0] == 'D' || text[0] == 'd') text++;
    else if (text[0] == 'A' || text[0] == 'a') text++, offset = 14;
    char *end;
    long pin = strtol(text, &end, 10) + offset;
    return (*end || end == text || pin < offset || pin > 19) ? -1 : (int)pin;
}

static int pwm_register(int pin) {
    switch (pin) {
    case 3: return 0xB4;  /* OCR2B */
    case 5: return 0x48;  /* OCR0B */
    case 6: return 0x47;  /* OCR0A */
    case 9: return 0x88;  /* OCR1AL */
    case 10: return 0x8A; /* OCR1BL */
    case 11: return 0xB3; /* OCR2A */
    default: return -1;
    }
}

static void execute(const char *text, char *reply, size_t size) {
    char verb[16] = "", first[32] = "", second[32] = "";
    int fields = sscanf(text, "%15s %31s %31s", verb, first, second);
    if (fields >= 3 && strcmp(verb, "set") == 0) {
        int pin = parse_pin(first);
        if (pin < 0) { snprintf(reply, size, "error bad pin %s", first); return; }
        avr_irq_t *irq = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ(PIN_PORT[pin]), PIN_BIT[pin]);
        avr_raise_irq(irq, atoi(second) ? 1 : 0);
        snprintf(reply, size, "ok");
    } else if (fields >= 3 && strcmp(verb, "adc") == 0) {
        int channel = atoi(first);
        if (channel < 0 || channel > 7) { snprintf(reply, size, "error bad channel %s", first); return; }
        avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0 + channel), (uint32_t)atoi(second));
        snprintf(reply, size, "ok");
    } else if (fields >= 2 && strcmp(verb, "get") == 0) {
        int pin = parse_pin(first);
        if (pin < 0) { snprintf(reply, size, "error bad pin %s", first); return; }
        char port = PIN_PORT[pin];
        int bit = PIN_BIT[pin];
        snprintf(reply, size, "pin %d port=%d ddr=%d pin=%d", pin, (avr->data[io_address(port, 2)] >> bit) & 1,
                 (avr->data[io_address(port, 1)] >> bit) & 1, (avr->data[io_address(port, 0)] >> bit) & 1);
    } else if (fields >= 2 && strcmp(verb, "pwm") == 0) {
        int pin = parse_pin(first);
        int address = pin < 0 ? -1 : pwm_register(pin);
        if (address < 0) { snprintf(reply, size, "error pin %s has no PWM", first); return; }
        snprintf(reply, size, "pwm %d %d", pin, avr->data[address]);
    } else if (fields >= 2 && strcmp(verb, "peek") == 0) {
        long address = strtol(first, NULL, 0);
        long count = fields >= 3 ? strtol(second, NULL, 0) : 1;
        if (address < 0 || count < 1 || count > 32 || address + count > (long)avr->ramend + 1) {
            snprintf(reply, size, "error bad address range");
            return;
        }
        size_t used = (size_t)snprintf(reply, size, "peek %s", first);
        for (long i = 0; i < count && used < size; i++)
            used += (size_t)snprintf(reply + used, size - used, " %02x", avr->data[address + i]);
    } else if (fields >= 1 && strcmp(verb, "time") == 0) {
        snprintf(reply, size, "time sim_us=%lld wall_us=%lld", sim_ns() / 1000, wall_ns() / 1000);
    } else {
        snprintf(reply, size, "error unknown command: %.200s", text);
    }
}

static void *control_thread(void *arg) {
    int listener = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_mutex_lock(&client_lock);
        if (client_fd >= 0) close(client_fd);
        client_fd = fd;
        pthread_mutex_unlock(&client_lock);
        char buffer[512];
        size_t filled = 0;
        for (;;) {
            ssize_t got = recv(fd, buffer + filled, sizeof buffer - 1 - filled, 0);
            if (got <= 0) break;
            filled += (size_t)got;
            char *newline;
            while ((newline = memchr(buffer, '\n', filled)) != NULL) {
                *newline = '\0';
                pthread_mutex_lock(&command_lock);
                snprintf(command_text, sizeof command_text, "%s", buffer);
                command_pending = 1;
                while (command_pending) pthread_cond_wait(&command_done, &command_lock);
                pthread_mutex_unlock(&command_lock);
                send_client("%s", command_reply);
                size_t used = (size_t)(newline - buffer) + 1;
                memmove(buffer, newline + 1, filled - used);
                filled -= used;
            }
            if (filled == sizeof buffer - 1) filled = 0; /* overlong line: drop it */
        }
        pthread_mutex_lock(&client_lock);
        if (client_fd == fd) client_fd = -1;
        pthread_mutex_unlock(&client_lock);
        close(fd);
    }
    return NULL;
}

static void serve_pending_command(void) {
    pthread_mutex_lock(&command_lock);
    execute(command_text, command_reply, sizeof command_reply);
    command_pending = 0;
    pthread_cond_signal(&command_done);
    pthread_mutex_unlock(&command_lock);
}

static int open_control_socket(int port) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0 || listen(listener, 2) < 0) {
        perror("control socket");
        exit(1);
    }
    return listener;
}

static void load_firmware(const char *path) {
    ihex_chunk_p chunks = NULL;
    int count = read_ihex_chunks(path, &chunks);
    if (count <= 0) {
        fprintf(stderr, "uno_bridge: cannot read Intel HEX file %s\n", path);
        exit(1);
    }
    for (int i = 0; i < count; i++) {
        if (chunks[i].baseaddr < 0x800000) { /* flash; higher bases are EEPROM/fuses */
            avr_loadcode(avr, chunks[i].data, chunks[i].size, chunks[i].baseaddr);
            if (chunks[i].baseaddr + chunks[i].size > avr->codeend) avr->codeend = chunks[i].baseaddr + chunks[i].size;
        }
    }
    free_ihex_chunks(chunks);
}

int main(int argc, char **argv) {
    const char *firmware = NULL;
    int control_port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--free") == 0) paced = 0;
        else if (strcmp(argv[i], "--slow-boot") == 0) fast_boot = 0;
        else if (strcmp(argv[i], "--ctrl-port") == 0 && i + 1 < argc) control_port = atoi(argv[++i]);
        else if (argv[i][0] != '-') firmware = argv[i];
        else { fprintf(stderr, "uno_bridge: unknown option %s\n", argv[i]); return 2; }
    }
    if (!firmware) {
        fprintf(stderr, "usage: uno_bridge [--free] [--slow-boot] [--ctrl-port N] FIRMWARE.hex\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    avr = avr_make_mcu_by_name("atmega328p");
    if (!avr) { fprintf(stderr, "uno_bridge: simavr has no atmega328p\n"); return 1; }
    avr_init(avr);
    avr->frequency = FREQUENCY;
    avr->vcc = avr->avcc = avr->aref = 5000;
    avr->log = LOG_ERROR;
    load_firmware(firmware);
    /* StandardFirmata uses no external interrupts; simavr's strict level trigger polls PD2/PD3 while low
     * and slows the core below real time. */
    avr_extint_set_strict_lvl_trig(avr, 0, 0);
    avr_extint_set_strict_lvl_trig(avr, 1, 0);

    open_uart_pty();
    for (int pin = 0; pin < 20; pin++) {
        avr_irq_t *irq = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ(PIN_PORT[pin]), PIN_BIT[pin]);
        avr_irq_register_notify(irq, pin_changed, (void *)(intptr_t)pin);
    }
    avr_cycle_timer_register_usec(avr, TICK_USEC, pace, NULL);
    wall_origin_ns = wall_ns();

    int listener = open_control_socket(control_port);
    struct sockaddr_in bound;
    socklen_t length = sizeof bound;
    getsockname(listener, (struct sockaddr *)&bound, &length);
    pthread_t thread;
    pthread_create(&thread, NULL, control_thread, (void *)(intptr_t)listener);
    fprintf(stderr, "READY pty=%s ctrl=%d\n", pty_name, ntohs(bound.sin_port));
    fflush(stderr);

    for (;;) {
        int state = avr_run(avr);
        if (command_pending) serve_pending_command();
        if (state == cpu_Done || state == cpu_Crashed) {
            fprintf(stderr, "uno_bridge: AVR core stopped (state %d)\n", state);
            _exit(1);
        }
    }
}

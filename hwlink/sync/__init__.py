"""Clock synchronization: models of device clocks, online synchronizers, tsync files, offline correction."""

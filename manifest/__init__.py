"""MPD and HLS: build, parse, rewrite and splice. Pure."""

"""Names the audience tests share (not in conftest.py: `from conftest import ...` finds
whichever directory's conftest was loaded last when several test folders run at once)."""

STREAM = "show"  # a stream that exists in storage as a bare manifest
VOD = "audvod"  # a real VOD made by `sparkcast submit` (conftest.vod_root)

"""Media tools shared by ingest and jobs: running ffmpeg, probing, parsing MP4 boxes."""

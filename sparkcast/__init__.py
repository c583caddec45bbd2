"""sparkcast: live-plus-batch video transcoding on Apache Spark."""

__version__ = "0.1.0"

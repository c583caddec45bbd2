package sparkcast.io;

import java.io.DataInput;
import java.io.DataOutput;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.BlockLocation;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.BytesWritable;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.mapreduce.InputFormat;
import org.apache.hadoop.mapreduce.InputSplit;
import org.apache.hadoop.mapreduce.JobContext;
import org.apache.hadoop.mapreduce.RecordReader;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.hadoop.mapreduce.lib.input.FileSplit;

/**
 * Reads a list of files as (offset, bytes) blocks: one split per entry of {@value #FILES},
 * in that order (a file may be listed more than once, with other ranges). Unlike Spark's
 * binaryFiles, which hands a task a file as one byte array, a task streams any size of
 * file (a 4 GB film) to its local disk holding one block at a time ({@value #BLOCK_BYTES},
 * default 8 MB).
 *
 * <p>{@value #FILES} holds one entry per line: the file's URL, a tab, and its byte ranges
 * ("start:length,start:length", in the order to read them) or nothing for the whole file.
 * A split is located on the hosts of the HDFS block holding its largest range's start: a
 * task cutting ten minutes of a two-hour film reads those minutes and the file's headers,
 * where they are.
 *
 * <p>Every split's first record is a marker (offset -1, no bytes): PySpark reads the first
 * record of an RDD built from a Hadoop format to check it, which then costs no block read.
 */
public class FileBlocksInputFormat extends InputFormat<LongWritable, BytesWritable> {

  public static final String FILES = "sparkcast.io.files";
  public static final String BLOCK_BYTES = "sparkcast.io.block.bytes";

  /** A file (or ranges of it), remembering which entry of the list it is. */
  public static class EntrySplit extends FileSplit {
    private int entry;

    public EntrySplit() {}

    EntrySplit(Path path, long length, String[] hosts, int entry) {
      // Spark drops splits of length 0: an empty file still gets its task.
      super(path, 0, Math.max(1, length), hosts);
      this.entry = entry;
    }

    int entry() {
      return entry;
    }

    @Override
    public void write(DataOutput out) throws IOException {
      super.write(out);
      out.writeInt(entry);
    }

    @Override
    public void readFields(DataInput in) throws IOException {
      super.readFields(in);
      entry = in.readInt();
    }
  }

  static String[] entries(Configuration conf) throws IOException {
    String text = conf.get(FILES, "");
    if (text.isEmpty()) {
      throw new IOException(FILES + " is not set: nothing to read");
    }
    return text.split("\n");
  }

  static Path path(String entry) {
    return new Path(entry.split("\t", 2)[0]);
  }

  /** {start, end} pairs of an entry; null for the whole file. */
  static long[][] ranges(String entry, long size) throws IOException {
    String[] parts = entry.split("\t", 2);
    String text = parts.length > 1 ? parts[1].trim() : "";
    if (text.isEmpty()) {
      return null;
    }
    String[] items = text.split(",");
    long[][] out = new long[items.length][];
    for (int i = 0; i < items.length; i++) {
      String[] pair = items[i].trim().split(":");
      long start;
      long length;
      try {
        start = Long.parseLong(pair[0]);
        length = Long.parseLong(pair[1]);
      } catch (RuntimeException e) {
        throw new IOException(FILES + ": expected start:length, got '" + items[i] + "'");
      }
      if (start < 0 || length < 0) {
        throw new IOException(FILES + ": negative range '" + items[i] + "'");
      }
      long from = Math.min(start, size);
      out[i] = new long[] {from, Math.min(size, from + length)};
    }
    return out;
  }

  @Override
  public List<InputSplit> getSplits(JobContext job) throws IOException {
    Configuration conf = job.getConfiguration();
    String[] entries = entries(conf);
    List<InputSplit> splits = new ArrayList<>();
    for (int i = 0; i < entries.length; i++) {
      Path path = path(entries[i]);
      FileSystem fs = path.getFileSystem(conf);
      FileStatus status = fs.getFileStatus(path);
      if (status.isDirectory()) {
        throw new IOException(path + " is a directory, not a file");
      }
      long size = status.getLen();
      long[][] ranges = ranges(entries[i], size);
      long at = 0;
      if (ranges != null && ranges.length > 0) {
        long[] largest = ranges[0];
        for (long[] r : ranges) {
          if (r[1] - r[0] > largest[1] - largest[0]) {
            largest = r;
          }
        }
        at = largest[0];
      }
      String[] hosts = new String[0];
      if (size > 0) {
        BlockLocation[] blocks = fs.getFileBlockLocations(status, Math.min(at, size - 1), 1);
        hosts = blocks.length > 0 ? blocks[0].getHosts() : hosts;
      }
      splits.add(new EntrySplit(status.getPath(), size, hosts, i));
    }
    return splits;
  }

  @Override
  public RecordReader<LongWritable, BytesWritable> createRecordReader(
      InputSplit split, TaskAttemptContext context) {
    return new BlockReader();
  }

  static final class BlockReader extends RecordReader<LongWritable, BytesWritable> {
    private Configuration conf;
    private Path path;
    private String entry;
    private FSDataInputStream in;
    private long[][] ranges;  // what to read, in order: {start, end}
    private int range = -1;  // -1: the marker record is next
    private long pos;
    private long total;
    private long done;
    private int blockBytes;
    private final LongWritable key = new LongWritable();
    private final BytesWritable value = new BytesWritable();

    @Override
    public void initialize(InputSplit split, TaskAttemptContext context) throws IOException {
      EntrySplit file = (EntrySplit) split;
      conf = context.getConfiguration();
      path = file.getPath();
      entry = entries(conf)[file.entry()];
      blockBytes = Math.max(1, conf.getInt(BLOCK_BYTES, 8 << 20));
    }

    /** Opened at the first block, so the marker record costs no read. */
    private void open() throws IOException {
      try {
        FileSystem fs = path.getFileSystem(conf);
        long size = fs.getFileStatus(path).getLen();
        ranges = FileBlocksInputFormat.ranges(entry, size);
        if (ranges == null) {
          ranges = new long[][] {{0, size}};
        }
        for (long[] r : ranges) {
          total += r[1] - r[0];
        }
        in = fs.open(path);
      } catch (IOException e) {
        throw new IOException(NamedFileOutputFormat.IO_ERROR + path + ": "
            + NamedFileOutputFormat.firstLine(e), e);
      }
      range = 0;
      pos = ranges.length > 0 ? ranges[0][0] : 0;
    }

    @Override
    public boolean nextKeyValue() throws IOException {
      if (range == -1 && in == null && ranges == null) {
        key.set(-1);
        value.setSize(0);
        range = -2;  // the marker is out; open at the next call
        return true;
      }
      if (range == -2) {
        open();
      }
      while (range < ranges.length && pos >= ranges[range][1]) {
        range++;
        pos = range < ranges.length ? ranges[range][0] : pos;
      }
      if (range >= ranges.length) {
        return false;
      }
      int n = (int) Math.min(blockBytes, ranges[range][1] - pos);
      byte[] block = new byte[n];
      try {
        in.readFully(pos, block, 0, n);
      } catch (IOException e) {
        throw new IOException(NamedFileOutputFormat.IO_ERROR + path + " (at byte " + pos
            + "): " + NamedFileOutputFormat.firstLine(e), e);
      }
      key.set(pos);
      value.set(block, 0, n);
      pos += n;
      done += n;
      return true;
    }

    @Override
    public LongWritable getCurrentKey() {
      return key;
    }

    @Override
    public BytesWritable getCurrentValue() {
      return value;
    }

    @Override
    public float getProgress() {
      return total == 0 ? 1f : (float) done / total;
    }

    @Override
    public void close() throws IOException {
      if (in != null) {
        in.close();
      }
    }
  }
}

package sparkcast.io;

import java.io.IOException;
import java.util.EnumSet;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.CreateFlag;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileContext;
import org.apache.hadoop.fs.Options;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.BytesWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.JobContext;
import org.apache.hadoop.mapreduce.OutputCommitter;
import org.apache.hadoop.mapreduce.OutputFormat;
import org.apache.hadoop.mapreduce.RecordWriter;
import org.apache.hadoop.mapreduce.TaskAttemptContext;

/**
 * Writes every (URL, bytes) record to the file its key names, so a Spark task can write
 * named files (segments, raw chunks, records) through Spark's own Hadoop client instead of
 * part-files: no WebHDFS, and the cluster's own security (Kerberos, ACLs) applies.
 *
 * <p>Each file is written under a hidden temporary name in its folder and renamed over the
 * target, so a reader never sees half a file. There is no commit step: a file is final once
 * renamed, and a re-run task rewrites the same names with the same bytes. Records are
 * written in the order the task produced them, so a task can write a "done" record last.
 */
public class NamedFileOutputFormat extends OutputFormat<Text, BytesWritable> {

  /** Starts the message of every I/O failure, so the driver finds it in a failed job's text. */
  public static final String IO_ERROR = "sparkcast-io: ";

  /** The first line of an exception's message (a NameNode's appends its stack). */
  static String firstLine(Exception e) {
    String m = String.valueOf(e.getMessage()).trim();
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }

  @Override
  public RecordWriter<Text, BytesWritable> getRecordWriter(TaskAttemptContext context) {
    return new Writer(context.getConfiguration(), context.getTaskAttemptID().toString());
  }

  /** Nothing to check: the keys name the files, and existing files are replaced. */
  @Override
  public void checkOutputSpecs(JobContext context) {}

  @Override
  public OutputCommitter getOutputCommitter(TaskAttemptContext context) {
    return new NoCommit();
  }

  static final class Writer extends RecordWriter<Text, BytesWritable> {
    private final Configuration conf;
    private final String attempt;

    Writer(Configuration conf, String attempt) {
      this.conf = conf;
      this.attempt = attempt;
    }

    @Override
    public void write(Text key, BytesWritable value) throws IOException {
      if (key.getLength() == 0) {
        return;
      }
      Path target = new Path(key.toString());
      if (!target.isAbsolute() || target.toUri().getScheme() == null) {
        throw new IOException(IO_ERROR + "output key is not a full URL: " + key);
      }
      FileContext fc;
      try {
        fc = FileContext.getFileContext(target.toUri(), conf);
      } catch (IOException e) {
        throw new IOException(IO_ERROR + target + ": " + firstLine(e), e);
      }
      Path tmp = new Path(target.getParent(), "." + target.getName() + "." + attempt + ".tmp");
      try (FSDataOutputStream out = fc.create(tmp,
          EnumSet.of(CreateFlag.CREATE, CreateFlag.OVERWRITE), Options.CreateOpts.createParent())) {
        out.write(value.getBytes(), 0, value.getLength());
      } catch (IOException e) {
        fc.delete(tmp, false);
        throw new IOException(IO_ERROR + target + ": " + firstLine(e), e);
      }
      try {
        fc.rename(tmp, target, Options.Rename.OVERWRITE);
      } catch (IOException e) {
        throw new IOException(IO_ERROR + target + ": " + firstLine(e), e);
      }
    }

    @Override
    public void close(TaskAttemptContext context) {}
  }

  /** Files are final when renamed: no job or task commit. */
  static final class NoCommit extends OutputCommitter {
    @Override public void setupJob(JobContext context) {}
    @Override public void setupTask(TaskAttemptContext context) {}
    @Override public boolean needsTaskCommit(TaskAttemptContext context) { return false; }
    @Override public void commitTask(TaskAttemptContext context) {}
    @Override public void abortTask(TaskAttemptContext context) {}
  }
}

package sparkcast.hadoop;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileUtil;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.protocol.DatanodeID;
import org.apache.hadoop.hdfs.server.datanode.DataNode;
import org.apache.hadoop.util.VersionInfo;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;
import org.apache.hadoop.yarn.server.nodemanager.NodeManager;
import org.apache.hadoop.yarn.server.resourcemanager.rmapp.RMApp;

/**
 * Hadoop test cluster for sparkcast: one JVM running a MiniDFSCluster
 * (NameNode + N DataNodes, WebHDFS on) and a MiniYARNCluster (ResourceManager
 * + M NodeManagers), all bound to 127.0.0.1.
 *
 * <pre>
 * usage: MiniHadoop CONF_DIR [options]
 *   --info FILE            JSON with the cluster's addresses (default CONF_DIR/cluster.json)
 *   --datanodes N          default 2
 *   --replication R        default 2
 *   --nodemanagers M       default 1; 0 = no YARN
 *   --no-yarn              same as --nodemanagers 0
 *   --nn-port P            NameNode RPC port (default: ephemeral)
 *   --webhdfs-port P       NameNode HTTP (WebHDFS) port (default: ephemeral)
 *   --rm-port P            ResourceManager client RPC port (default: ephemeral)
 *   --rm-web-port P        ResourceManager web port (default: ephemeral)
 *   --conf KEY=VALUE       extra Hadoop setting (repeatable); also written to the
 *                          client site file (dfs.* hdfs-site, yarn.* yarn-site, else core-site)
 *   --work-dir DIR         HDFS storage, YARN local and log dirs (default: the current directory)
 *   --delete-work-dir      delete the working directory on shutdown
 *   --no-stdin             ignore end-of-file on stdin (run until SIGTERM)
 *   --nm-web               keep the NodeManagers' web servers (the ResourceManager's
 *                          REST API then answers 404: Guice's filter is JVM-wide)
 * </pre>
 *
 * Protocol: stdout carries only protocol lines (Hadoop's own output goes to
 * stderr). After start-up it prints "READY". Then it reads commands from
 * stdin, one a line, and answers each with one line "OK ..." or "ERR ...":
 * <pre>
 *   stop-datanode I    shut DataNode I down (like a crash; indexes are stable)
 *   mark-dead I        tell the NameNode now that the stopped DataNode I is dead
 *   start-datanode I   restart the stopped DataNode I on its old ports; waits until registered
 *   status             "OK {json}" with the same content as the info file
 *   apps               "OK [json]": the YARN applications (id, name, state, final_status...)
 *   shutdown           stop everything, print "BYE", exit 0 (also on end of stdin)
 * </pre>
 */
public final class MiniHadoop {

  private static PrintStream protocol;

  private final Map<String, String> opts = new LinkedHashMap<>();
  private final Map<String, String> extraConf = new LinkedHashMap<>();
  private File confDir;
  private File infoFile;
  private File workDir;
  private int numDataNodes = 2;
  private int replication = 2;
  private int numNodeManagers = 1;
  private boolean deleteWorkDir;
  private boolean ignoreStdinEof;
  private boolean nmWeb;

  private MiniDFSCluster dfs;
  private MiniYARNCluster yarn;
  /** Client-side YARN settings as we chose them (127.0.0.1:PORT). */
  private final Map<String, String> yarnClient = new LinkedHashMap<>();
  /** Stable per-index DataNode state (MiniDFSCluster renumbers its own list). */
  private final List<DnSlot> slots = new ArrayList<>();
  private final AtomicBoolean stopped = new AtomicBoolean();
  private long startMillis;
  private long readyMillis;

  private static final class DnSlot {
    String xferAddr;
    int httpPort;
    int ipcPort;
    DatanodeID id;
    MiniDFSCluster.DataNodeProperties stoppedProps; // non-null while stopped
  }

  public static void main(String[] args) throws Exception {
    // Keep stdout for the protocol; anything Hadoop prints goes to stderr.
    protocol = new PrintStream(new FileOutputStream(FileDescriptor.out), true,
        StandardCharsets.UTF_8);
    System.setOut(System.err);
    MiniHadoop mh = new MiniHadoop();
    try {
      mh.parse(args);
      mh.start();
    } catch (Throwable t) {
      System.err.println("MiniHadoop: start-up failed: " + t);
      t.printStackTrace(System.err);
      say("FAILED " + oneLine(String.valueOf(t)));
      mh.stop();
      Runtime.getRuntime().halt(1);
    }
    mh.serve();
  }

  private static void say(String line) {
    protocol.println(line);
    protocol.flush();
  }

  private static String oneLine(String s) {
    return s.replace('\n', ' ').replace('\r', ' ');
  }

  private void parse(String[] args) {
    List<String> pos = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--no-yarn": numNodeManagers = 0; break;
        case "--delete-work-dir": deleteWorkDir = true; break;
        case "--no-stdin": ignoreStdinEof = true; break;
        case "--nm-web": nmWeb = true; break;
        case "--conf": {
          String kv = need(args, ++i, a);
          int eq = kv.indexOf('=');
          if (eq <= 0) throw new IllegalArgumentException("--conf wants KEY=VALUE: " + kv);
          extraConf.put(kv.substring(0, eq), kv.substring(eq + 1));
          break;
        }
        case "--work-dir": case "--info": case "--datanodes": case "--replication": case "--nodemanagers":
        case "--nn-port": case "--webhdfs-port": case "--rm-port": case "--rm-web-port":
          opts.put(a, need(args, ++i, a));
          break;
        default:
          if (a.startsWith("--")) throw new IllegalArgumentException("unknown option " + a);
          pos.add(a);
      }
    }
    if (pos.size() != 1) {
      throw new IllegalArgumentException("usage: MiniHadoop CONF_DIR [options]");
    }
    confDir = new File(pos.get(0)).getAbsoluteFile();
    infoFile = new File(opts.getOrDefault("--info", new File(confDir, "cluster.json").getPath()))
        .getAbsoluteFile();
    workDir = new File(opts.getOrDefault("--work-dir", System.getProperty("user.dir")))
        .getAbsoluteFile();
    numDataNodes = Integer.parseInt(opts.getOrDefault("--datanodes", "2"));
    replication = Integer.parseInt(opts.getOrDefault("--replication", "2"));
    if (opts.containsKey("--nodemanagers")) {
      numNodeManagers = Integer.parseInt(opts.get("--nodemanagers"));
    }
  }

  private static String need(String[] args, int i, String opt) {
    if (i >= args.length) throw new IllegalArgumentException(opt + " needs a value");
    return args[i];
  }

  private int port(String opt) throws IOException {
    // 0: the server binds an ephemeral port itself (no race with other
    // processes, as there would be for a port picked here and bound later).
    return Math.max(0, Integer.parseInt(opts.getOrDefault(opt, "0")));
  }

  private static final String[] RM_ADDRESS_KEYS = {
      "yarn.resourcemanager.address",
      "yarn.resourcemanager.scheduler.address",
      "yarn.resourcemanager.resource-tracker.address",
      "yarn.resourcemanager.admin.address",
      "yarn.resourcemanager.webapp.address"};

  private static int portOf(String hostPort) {
    return Integer.parseInt(hostPort.substring(hostPort.lastIndexOf(':') + 1).trim());
  }

  // ------------------------------------------------------------------ start

  private void start() throws Exception {
    startMillis = System.currentTimeMillis();
    Runtime.getRuntime().addShutdownHook(new Thread(this::stop, "minihadoop-shutdown"));
    Files.createDirectories(confDir.toPath());
    Files.deleteIfExists(infoFile.toPath());

    // ---- HDFS
    Configuration conf = new Configuration();
    conf.set("hadoop.security.authentication", "simple");
    conf.setInt("dfs.replication", replication);
    conf.setBoolean("dfs.webhdfs.enabled", true);
    conf.setBoolean("dfs.permissions.enabled", false);
    // Small blocks are allowed so that tests can make multi-block files.
    conf.setLong("dfs.namenode.fs-limits.min-block-size", 1024);
    // Notice a stopped DataNode quickly: stale after 3 s (reads and writes then
    // avoid it, which WebHDFS redirects need), dead after 2*5 s + 10*1 s = 20 s.
    conf.setLong("dfs.heartbeat.interval", 1);
    conf.setInt("dfs.namenode.heartbeat.recheck-interval", 5000);
    conf.setLong("dfs.namenode.stale.datanode.interval", 3000);
    conf.setBoolean("dfs.namenode.avoid.read.stale.datanode", true);
    conf.setBoolean("dfs.namenode.avoid.write.stale.datanode", true);
    conf.setInt("dfs.namenode.safemode.extension", 0);
    conf.setInt("dfs.namenode.redundancy.interval.seconds", 1);
    // Fewer threads: less memory, same behaviour for a test cluster.
    conf.setInt("dfs.namenode.handler.count", 8);
    conf.setInt("dfs.namenode.service.handler.count", 4);
    conf.setInt("dfs.namenode.lifeline.handler.count", 1);
    conf.setInt("dfs.datanode.handler.count", 3);
    conf.setInt("dfs.datanode.max.transfer.threads", 256);
    conf.setInt("hadoop.http.max.threads", 24);
    conf.setInt("ipc.server.handler.queue.size", 100);
    conf.setBoolean("hadoop.http.metrics.enabled", false);
    for (Map.Entry<String, String> e : extraConf.entrySet()) conf.set(e.getKey(), e.getValue());

    int nnPort = port("--nn-port");
    int nnHttpPort = port("--webhdfs-port");
    String[] hosts = new String[numDataNodes];
    java.util.Arrays.fill(hosts, "127.0.0.1");
    dfs = new MiniDFSCluster.Builder(conf, new File(workDir, "dfs"))
        .numDataNodes(numDataNodes)
        .hosts(hosts)
        .nameNodePort(nnPort)
        .nameNodeHttpPort(nnHttpPort)
        .format(true)
        .waitSafeMode(true)
        .checkExitOnShutdown(false)
        .build();
    dfs.waitActive();
    for (DataNode dn : dfs.getDataNodes()) {
      DnSlot s = new DnSlot();
      s.xferAddr = dn.getXferAddress().getAddress().getHostAddress() + ":"
          + dn.getXferAddress().getPort();
      s.httpPort = dn.getInfoPort();
      s.ipcPort = dn.getIpcPort();
      s.id = dn.getDatanodeId();
      slots.add(s);
    }
    System.err.println("MiniHadoop: HDFS up in " + (System.currentTimeMillis() - startMillis) + " ms");

    // ---- YARN
    if (numNodeManagers > 0) {
      YarnConfiguration yc = new YarnConfiguration(dfs.getConfiguration(0));
      yc.setBoolean(YarnConfiguration.YARN_MINICLUSTER_FIXED_PORTS, true); // use our addresses
      String h = "127.0.0.1";
      yarnClient.put("yarn.resourcemanager.hostname", h);
      yarnClient.put("yarn.resourcemanager.address", h + ":" + port("--rm-port"));
      yarnClient.put("yarn.resourcemanager.scheduler.address", h + ":0");
      yarnClient.put("yarn.resourcemanager.resource-tracker.address", h + ":0");
      yarnClient.put("yarn.resourcemanager.admin.address", h + ":0");
      yarnClient.put("yarn.resourcemanager.webapp.address", h + ":" + port("--rm-web-port"));
      yarnClient.put("yarn.scheduler.minimum-allocation-mb", "128");
      yarnClient.put("yarn.scheduler.maximum-allocation-mb", "4096");
      yarnClient.put("yarn.log-aggregation-enable", "false");
      yarnClient.put("yarn.timeline-service.enabled", "false");
      for (Map.Entry<String, String> e : yarnClient.entrySet()) yc.set(e.getKey(), e.getValue());
      yc.set("yarn.nodemanager.hostname", h);
      // No capacity-scheduler.xml ships in the shaded jars: one queue, all of it,
      // and let ApplicationMasters use all of it (the default 10 % holds a
      // Spark AM back on a 4 GB NodeManager).
      yc.set("yarn.scheduler.capacity.root.queues", "default");
      yc.set("yarn.scheduler.capacity.root.default.capacity", "100");
      yc.set("yarn.scheduler.capacity.root.default.maximum-capacity", "100");
      yc.set("yarn.scheduler.capacity.root.default.state", "RUNNING");
      yc.set("yarn.scheduler.capacity.root.default.acl_submit_applications", "*");
      yc.set("yarn.scheduler.capacity.root.default.acl_administer_queue", "*");
      yc.setFloat("yarn.scheduler.capacity.maximum-am-resource-percent", 1.0f);
      // A nearly full disk must not mark the only NodeManager unhealthy.
      yc.setFloat("yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage", 100f);
      yc.setLong("yarn.nodemanager.disk-health-checker.min-free-space-per-disk-mb", 0);
      yc.setBoolean("yarn.nodemanager.pmem-check-enabled", false);
      yc.setBoolean("yarn.nodemanager.vmem-check-enabled", false);
      // Quick shutdown after applications ran: the NodeManager waits
      // sigkill-delay + process-kill-wait + 1 s for containers (default ~6 s),
      // and its deletion service up to 10 s for delayed deletions.
      yc.setLong("yarn.nodemanager.process-kill-wait.ms", 1000);
      yc.setInt("yarn.nodemanager.delete.debug-delay-sec", 0);
      yc.setInt("yarn.resourcemanager.client.thread-count", 4);
      yc.setInt("yarn.resourcemanager.scheduler.client.thread-count", 4);
      yc.setInt("yarn.resourcemanager.resource-tracker.client.thread-count", 2);
      yc.setInt("yarn.resourcemanager.admin.client.thread-count", 1);
      yc.setInt("yarn.nodemanager.container-manager.thread-count", 4);
      yc.setInt("yarn.nodemanager.localizer.client.thread-count", 2);
      yc.setInt("yarn.nodemanager.localizer.fetch.thread-count", 2);
      yc.setLong("yarn.nodemanager.resourcemanager.minimum.version", 0);
      for (Map.Entry<String, String> e : extraConf.entrySet()) yc.set(e.getKey(), e.getValue());

      long t0 = System.currentTimeMillis();
      // MiniYARNCluster puts its dirs under ${test.build.data} (default: ./target/test/data).
      System.setProperty("test.build.data", new File(workDir, "yarn").getPath());
      yarn = new MiniYARNCluster("minihadoop-yarn", 1, numNodeManagers, 1, 1);
      yarn.init(yc);
      if (!nmWeb) {
        // Guice's servlet filter keeps its routes in a static field: with the
        // ResourceManager and a NodeManager web server in one JVM, the one
        // started last answers on both ports (the RM's REST API /ws/v1/cluster
        // then gives 404). Nothing needs the NodeManager's web UI here; drop it.
        for (int i = 0; i < numNodeManagers; i++) {
          yarn.getNodeManager(i).disableWebServer();
        }
      }
      yarn.start();
      if (!yarn.waitForNodeManagersToConnect(60_000)) {
        throw new IOException("NodeManagers did not register with the ResourceManager in 60 s");
      }
      // The ResourceManager wrote the ports it bound back into the configuration
      // (as "localhost:PORT"); clients get them as 127.0.0.1:PORT.
      for (String k : RM_ADDRESS_KEYS) {
        int p = portOf(yarn.getConfig().get(k));
        if (p <= 0) throw new IOException("ResourceManager did not report its port for " + k);
        yarnClient.put(k, h + ":" + p);
      }
      System.err.println("MiniHadoop: YARN up in " + (System.currentTimeMillis() - t0) + " ms");
    }

    writeSiteFiles();
    readyMillis = System.currentTimeMillis();
    writeAtomically(infoFile, infoJson());
    System.err.println("MiniHadoop: ready in " + (readyMillis - startMillis) + " ms; info " + infoFile);
    say("READY");
  }

  // ------------------------------------------------------------- site files

  private void writeSiteFiles() throws IOException {
    Map<String, String> core = new LinkedHashMap<>();
    Map<String, String> hdfs = new LinkedHashMap<>();
    Map<String, String> yarnSite = new LinkedHashMap<>();

    core.put("fs.defaultFS", nameNodeUri());
    core.put("hadoop.security.authentication", "simple");

    Configuration dc = dfs.getConfiguration(0);
    hdfs.put("dfs.replication", String.valueOf(replication));
    hdfs.put("dfs.namenode.rpc-address", "127.0.0.1:" + dfs.getNameNodePort());
    hdfs.put("dfs.namenode.http-address", webHdfsHostPort());
    hdfs.put("dfs.webhdfs.enabled", "true");
    hdfs.put("dfs.permissions.enabled", "false");
    hdfs.put("dfs.client.use.datanode.hostname", "false");
    hdfs.put("dfs.namenode.fs-limits.min-block-size", dc.get("dfs.namenode.fs-limits.min-block-size"));

    if (yarn != null) {
      yarnSite.putAll(yarnClient);
    }
    for (Map.Entry<String, String> e : extraConf.entrySet()) {
      String k = e.getKey();
      (k.startsWith("dfs.") ? hdfs : k.startsWith("yarn.") ? yarnSite : core).put(k, e.getValue());
    }
    writeAtomically(new File(confDir, "core-site.xml"), siteXml(core));
    writeAtomically(new File(confDir, "hdfs-site.xml"), siteXml(hdfs));
    if (yarn != null) {
      writeAtomically(new File(confDir, "yarn-site.xml"), siteXml(yarnSite));
    } else {
      Files.deleteIfExists(new File(confDir, "yarn-site.xml").toPath());
    }
  }

  private static String siteXml(Map<String, String> props) {
    StringBuilder sb = new StringBuilder();
    sb.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    sb.append("<!-- written by sparkcast deploy/hadoop MiniHadoop; rewritten on every start -->\n");
    sb.append("<configuration>\n");
    for (Map.Entry<String, String> e : props.entrySet()) {
      if (e.getValue() == null) continue;
      sb.append("  <property><name>").append(xml(e.getKey())).append("</name><value>")
          .append(xml(e.getValue())).append("</value></property>\n");
    }
    sb.append("</configuration>\n");
    return sb.toString();
  }

  private static String xml(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
  }

  private static void writeAtomically(File f, String content) throws IOException {
    Path tmp = new File(f.getParentFile(), "." + f.getName() + ".tmp").toPath();
    Files.createDirectories(f.getAbsoluteFile().getParentFile().toPath());
    Files.write(tmp, content.getBytes(StandardCharsets.UTF_8));
    Files.move(tmp, f.toPath(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  // ------------------------------------------------------------------- info

  private String nameNodeUri() {
    return "hdfs://127.0.0.1:" + dfs.getNameNodePort();
  }

  private String webHdfsHostPort() {
    return "127.0.0.1:" + dfs.getNameNode().getHttpAddress().getPort();
  }

  private String infoJson() {
    StringBuilder sb = new StringBuilder("{");
    kv(sb, "namenode_rpc", nameNodeUri()).append(", ");
    kv(sb, "webhdfs", "http://" + webHdfsHostPort()).append(", ");
    if (yarn != null) {
      kv(sb, "resourcemanager", yarnClient.get("yarn.resourcemanager.address")).append(", ");
      kv(sb, "resourcemanager_web", "http://" + yarnClient.get("yarn.resourcemanager.webapp.address")).append(", ");
    } else {
      sb.append("\"resourcemanager\": null, \"resourcemanager_web\": null, ");
    }
    sb.append("\"datanodes\": [");
    for (int i = 0; i < slots.size(); i++) {
      DnSlot s = slots.get(i);
      if (i > 0) sb.append(", ");
      sb.append("{");
      sb.append("\"index\": ").append(i).append(", ");
      kv(sb, "xfer", s.xferAddr).append(", ");
      kv(sb, "http", "http://127.0.0.1:" + s.httpPort).append(", ");
      kv(sb, "ipc", "127.0.0.1:" + s.ipcPort).append(", ");
      sb.append("\"alive\": ").append(s.stoppedProps == null);
      sb.append("}");
    }
    sb.append("], ");
    sb.append("\"nodemanagers\": [");
    for (int i = 0; i < numNodeManagers && yarn != null; i++) {
      NodeManager nm = yarn.getNodeManager(i);
      if (i > 0) sb.append(", ");
      sb.append("{");
      kv(sb, "node_id", String.valueOf(nm.getNMContext().getNodeId())).append(", ");
      kv(sb, "log_dirs", nm.getConfig().get("yarn.nodemanager.log-dirs")).append(", ");
      kv(sb, "local_dirs", nm.getConfig().get("yarn.nodemanager.local-dirs"));
      sb.append("}");
    }
    sb.append("], ");
    sb.append("\"replication\": ").append(replication).append(", ");
    kv(sb, "conf_dir", confDir.getPath()).append(", ");
    kv(sb, "work_dir", workDir.getPath()).append(", ");
    kv(sb, "hadoop_version", VersionInfo.getVersion()).append(", ");
    sb.append("\"pid\": ").append(ProcessHandle.current().pid()).append(", ");
    sb.append("\"startup_ms\": ").append(readyMillis - startMillis);
    sb.append("}");
    return sb.toString();
  }

  private static StringBuilder kv(StringBuilder sb, String k, String v) {
    sb.append(jstr(k)).append(": ").append(v == null ? "null" : jstr(v));
    return sb;
  }

  private static String jstr(String s) {
    StringBuilder sb = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"': sb.append("\\\""); break;
        case '\\': sb.append("\\\\"); break;
        case '\n': sb.append("\\n"); break;
        case '\r': sb.append("\\r"); break;
        case '\t': sb.append("\\t"); break;
        default:
          if (c < 0x20) sb.append(String.format("\\u%04x", (int) c)); else sb.append(c);
      }
    }
    return sb.append('"').toString();
  }

  // --------------------------------------------------------------- commands

  private void serve() throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while (true) {
      line = in.readLine();
      if (line == null) {
        if (ignoreStdinEof) {
          Thread.sleep(Long.MAX_VALUE); // until SIGTERM
        }
        System.err.println("MiniHadoop: end of stdin, shutting down");
        break;
      }
      line = line.trim();
      if (line.isEmpty()) continue;
      String[] w = line.split("\\s+");
      try {
        switch (w[0]) {
          case "shutdown": case "quit": case "exit":
            shutdownAndExit();
            return;
          case "stop-datanode":
            stopDataNode(index(w));
            say("OK stop-datanode " + w[1]);
            break;
          case "mark-dead":
            markDead(index(w));
            say("OK mark-dead " + w[1]);
            break;
          case "start-datanode":
            startDataNode(index(w));
            say("OK start-datanode " + w[1]);
            break;
          case "status":
            say("OK " + infoJson());
            break;
          case "apps":
            say("OK " + appsJson());
            break;
          default:
            say("ERR unknown command: " + w[0]);
        }
      } catch (Exception e) {
        System.err.println("MiniHadoop: command failed: " + line);
        e.printStackTrace(System.err);
        say("ERR " + oneLine(String.valueOf(e)));
      }
    }
    shutdownAndExit();
  }

  /**
   * YARN applications, read from the ResourceManager directly: its REST API
   * is not usable for this with the shaded minicluster jars (JSON goes through
   * plain Jackson and fails on /ws/v1/cluster/apps; XML has no JAXB provider).
   */
  private String appsJson() {
    StringBuilder sb = new StringBuilder("[");
    if (yarn != null) {
      boolean first = true;
      for (RMApp app : yarn.getResourceManager().getRMContext().getRMApps().values()) {
        if (!first) sb.append(", ");
        first = false;
        sb.append("{");
        kv(sb, "id", app.getApplicationId().toString()).append(", ");
        kv(sb, "name", app.getName()).append(", ");
        kv(sb, "type", app.getApplicationType()).append(", ");
        kv(sb, "user", app.getUser()).append(", ");
        kv(sb, "queue", app.getQueue()).append(", ");
        kv(sb, "state", String.valueOf(app.getState())).append(", ");
        kv(sb, "final_status", String.valueOf(app.getFinalApplicationStatus())).append(", ");
        kv(sb, "diagnostics", String.valueOf(app.getDiagnostics())).append(", ");
        sb.append("\"start_time\": ").append(app.getStartTime()).append(", ");
        sb.append("\"finish_time\": ").append(app.getFinishTime());
        sb.append("}");
      }
    }
    return sb.append("]").toString();
  }

  private int index(String[] w) {
    if (w.length < 2) throw new IllegalArgumentException(w[0] + " needs a DataNode index");
    int i = Integer.parseInt(w[1]);
    if (i < 0 || i >= slots.size()) {
      throw new IllegalArgumentException("no DataNode " + i + " (have " + slots.size() + ")");
    }
    return i;
  }

  private void stopDataNode(int i) throws IOException {
    DnSlot s = slots.get(i);
    if (s.stoppedProps != null) throw new IllegalStateException("DataNode " + i + " is already stopped");
    MiniDFSCluster.DataNodeProperties props = dfs.stopDataNode(s.xferAddr);
    if (props == null) throw new IllegalStateException("DataNode " + i + " (" + s.xferAddr + ") not found");
    s.stoppedProps = props;
    refreshInfo();
  }

  private void markDead(int i) throws IOException {
    DnSlot s = slots.get(i);
    if (s.stoppedProps == null) throw new IllegalStateException("DataNode " + i + " is running; stop it first");
    dfs.setDataNodeDead(s.id);
  }

  private void startDataNode(int i) throws IOException {
    DnSlot s = slots.get(i);
    if (s.stoppedProps == null) throw new IllegalStateException("DataNode " + i + " is running");
    if (!dfs.restartDataNode(s.stoppedProps, true)) {
      throw new IOException("DataNode " + i + " did not restart");
    }
    s.stoppedProps = null;
    dfs.waitActive();
    for (DataNode dn : dfs.getDataNodes()) {
      String addr = dn.getXferAddress().getAddress().getHostAddress() + ":" + dn.getXferAddress().getPort();
      if (addr.equals(s.xferAddr)) s.id = dn.getDatanodeId();
    }
    dfs.triggerHeartbeats();
    refreshInfo();
  }

  private void refreshInfo() throws IOException {
    writeAtomically(infoFile, infoJson());
  }

  // --------------------------------------------------------------- shutdown

  private void shutdownAndExit() {
    // A watchdog, in case a Hadoop service hangs while stopping.
    Thread dog = new Thread(() -> {
      try {
        Thread.sleep(30_000);
      } catch (InterruptedException e) {
        return;
      }
      System.err.println("MiniHadoop: shutdown took over 30 s; halting");
      say("BYE");
      Runtime.getRuntime().halt(0);
    }, "minihadoop-shutdown-watchdog");
    dog.setDaemon(true);
    dog.start();
    stop();
    say("BYE");
    Runtime.getRuntime().halt(0);
  }

  private void stop() {
    if (!stopped.compareAndSet(false, true)) return;
    System.err.println("MiniHadoop: stopping");
    try {
      if (yarn != null) yarn.stop();
    } catch (Throwable t) {
      System.err.println("MiniHadoop: stopping YARN: " + t);
    }
    try {
      if (dfs != null) dfs.shutdown(true);
    } catch (Throwable t) {
      System.err.println("MiniHadoop: stopping HDFS: " + t);
    }
    try {
      Files.deleteIfExists(infoFile.toPath());
    } catch (Throwable t) {
      // ignore
    }
    if (deleteWorkDir && workDir != null) {
      FileUtil.fullyDelete(workDir);
    }
    System.err.println("MiniHadoop: stopped");
  }
}

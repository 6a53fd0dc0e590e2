//! The `mqtt` command driven as a process against a mosquitto broker each test starts.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mqtt_testkit::{Mosquitto, MosquittoConfig, ScriptedBroker};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt");
const LIMIT: Duration = Duration::from_secs(20);
/// How long the broker may take to log what a test has just seen happen.
const LOG_WAIT: Duration = Duration::from_secs(5);

fn mqtt(broker: &Mosquitto, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    cmd.args(["-h", "127.0.0.1", "-p", &broker.port().to_string()]);
    cmd
}

/// Runs a command to completion within the time limit (killing it past that).
fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn mqtt");
    if let Some(data) = stdin {
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(data).expect("write stdin");
    }
    finish(child)
}

fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + LIMIT;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "mqtt did not finish in {LIMIT:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A broker that logs every subscription, so tests know when a subscriber is ready.
fn broker() -> Mosquitto {
    Mosquitto::start(MosquittoConfig::new().extra("log_type subscribe"))
}

/// Starts `mqtt sub` and waits until the broker has its subscription to `args`' first `-t`.
fn start_sub(broker: &Mosquitto, args: &[&str]) -> Child {
    let mut cmd = mqtt(broker, &["sub"]);
    cmd.args(args);
    spawn_subscribed(broker, cmd, args)
}

fn spawn_subscribed(broker: &Mosquitto, mut cmd: Command, args: &[&str]) -> Child {
    let topic = args
        .iter()
        .position(|a| *a == "-t")
        .and_then(|i| args.get(i + 1))
        .map(|t| format!(" {t}"))
        .unwrap_or_default();
    let before = subscriptions(broker, &topic);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().expect("spawn mqtt sub");
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        if subscriptions(broker, &topic) > before {
            return child;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "the subscription never reached the broker:\n{}",
        broker.log()
    );
}

/// Subscription lines in the broker log ending with `topic` (logged as "id qos topic").
fn subscriptions(broker: &Mosquitto, topic: &str) -> usize {
    broker.log().lines().filter(|l| l.ends_with(topic)).count()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// mosquitto's own client (`mosquitto_pub`, `mosquitto_sub`: Debian's mosquitto-clients),
/// installed by the testkit when it can, to compare with.
fn mosquitto_client(name: &str) -> Option<PathBuf> {
    match mqtt_testkit::mosquitto_client(name) {
        Ok(found) => Some(found),
        Err(why) => {
            eprintln!("{why}: comparing with mosquitto's recorded answers only");
            None
        }
    }
}

/// One command line run by `mqtt` and, when installed, by mosquitto's client.
struct Compared {
    ours: Output,
    theirs: Option<Output>,
}

/// Runs `mqtt TOOL ARGS...` and `mosquitto_TOOL ARGS...` (`args[0]` is `pub` or `sub`),
/// both against the broker on `port`.
fn compare(args: &[&str], port: u16) -> Compared {
    let (tool, rest) = args.split_first().expect("pub or sub");
    let port = port.to_string();
    let server = ["-h", "127.0.0.1", "-p", port.as_str()];
    let mut ours = Command::new(BIN);
    ours.args(args).args(server);
    let theirs = mosquitto_client(&format!("mosquitto_{tool}")).map(|client| {
        let mut theirs = Command::new(client);
        theirs.args(rest).args(server);
        run(theirs, None)
    });
    Compared {
        ours: run(ours, None),
        theirs,
    }
}

impl Compared {
    fn each(&self) -> impl Iterator<Item = (&'static str, &Output)> {
        std::iter::once(("mqtt", &self.ours)).chain(self.theirs.iter().map(|t| ("mosquitto", t)))
    }

    /// Both exit with `code`.
    fn exits(&self, code: i32) -> &Self {
        for (who, out) in self.each() {
            assert_eq!(
                out.status.code(),
                Some(code),
                "{who}: stdout {:?}, stderr {:?}",
                stdout(out),
                stderr(out)
            );
        }
        self
    }

    /// Both print `line` as the first line on stderr.
    fn first_error_line(&self, line: &str) -> &Self {
        for (who, out) in self.each() {
            assert_eq!(stderr(out).lines().next(), Some(line), "{who}");
        }
        self
    }
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        stderr(out)
    );
}

#[test]
fn pub_and_sub_round_trip_at_every_qos_and_version() {
    let broker = broker();
    for (i, version) in ["mqttv31", "mqttv311", "mqttv5", "5"].iter().enumerate() {
        for qos in ["0", "1", "2"] {
            let topic = format!("cli/{i}/{qos}");
            let sub = start_sub(
                &broker,
                &["-t", &topic, "-q", qos, "-V", version, "-v", "-C", "1"],
            );
            let out = run(
                mqtt(
                    &broker,
                    &["pub", "-t", &topic, "-m", "hello", "-q", qos, "-V", version],
                ),
                None,
            );
            assert_ok(&out);
            let got = finish(sub);
            assert_ok(&got);
            assert_eq!(stdout(&got), format!("{topic} hello\n"));
        }
    }
}

#[test]
fn pub_reads_lines_files_stdin_and_null_messages() {
    let broker = broker();
    let sub = start_sub(&broker, &["-t", "src/#", "-C", "6", "-v"]);
    assert_ok(&run(
        mqtt(&broker, &["pub", "-t", "src/lines", "-l", "-q", "1"]),
        Some(b"one\ntwo\nthree\n"),
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, b"from a file").unwrap();
    assert_ok(&run(
        mqtt(
            &broker,
            &["pub", "-t", "src/file", "-f", file.to_str().unwrap()],
        ),
        None,
    ));
    assert_ok(&run(
        mqtt(&broker, &["pub", "-t", "src/stdin", "-s"]),
        Some(b"all of stdin"),
    ));
    assert_ok(&run(mqtt(&broker, &["pub", "-t", "src/null", "-n"]), None));
    let got = finish(sub);
    assert_ok(&got);
    assert_eq!(
        stdout(&got),
        "src/lines one\nsrc/lines two\nsrc/lines three\nsrc/file from a file\nsrc/stdin all of stdin\nsrc/null \n"
    );
}

#[test]
fn retained_messages_and_stale_retained_filtering() {
    let broker = broker();
    assert_ok(&run(
        mqtt(
            &broker,
            &["pub", "-t", "ret/a", "-m", "kept", "-r", "-q", "1"],
        ),
        None,
    ));
    // A new subscriber gets the retained message...
    let out = run(
        mqtt(&broker, &["sub", "-t", "ret/#", "-C", "1", "-W", "10"]),
        None,
    );
    assert_ok(&out);
    assert_eq!(stdout(&out), "kept\n");
    // ... unless -R asks not to print stale retained messages.
    let out = run(
        mqtt(&broker, &["sub", "-t", "ret/#", "-R", "-W", "2"]),
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(27),
        "timed out with nothing printed"
    );
    assert_eq!(stdout(&out), "");
    // --retained-only prints retained messages and stops at the first live one.
    let sub = start_sub(&broker, &["-t", "ret/#", "--retained-only", "-W", "10"]);
    assert_ok(&run(
        mqtt(&broker, &["pub", "-t", "ret/b", "-m", "live"]),
        None,
    ));
    let got = finish(sub);
    assert_ok(&got);
    assert_eq!(stdout(&got), "kept\n");
}

#[test]
fn filter_out_no_newline_and_timeout() {
    let broker = broker();
    let sub = start_sub(&broker, &["-t", "f/#", "-T", "f/skip", "-N", "-C", "2"]);
    for (topic, payload) in [("f/skip", "x"), ("f/a", "1"), ("f/skip", "y"), ("f/b", "2")] {
        assert_ok(&run(
            mqtt(&broker, &["pub", "-t", topic, "-m", payload, "-q", "1"]),
            None,
        ));
    }
    let got = finish(sub);
    assert_ok(&got);
    assert_eq!(stdout(&got), "12");

    let started = Instant::now();
    let timed_out = compare(&["sub", "-t", "quiet", "-W", "1"], broker.port());
    assert!(started.elapsed() < Duration::from_secs(20));
    timed_out.exits(27);
    for (who, out) in timed_out.each() {
        assert_eq!(stderr(out), "Timed out\n", "{who}");
        assert_eq!(stdout(out), "", "{who}");
    }
    let quiet = compare(&["sub", "-t", "quiet", "-W", "1", "--quiet"], broker.port());
    quiet.exits(27);
    for (who, out) in quiet.each() {
        assert_eq!(stderr(out), "", "{who}");
    }
}

#[test]
fn exit_after_subscribing() {
    let broker = broker();
    let out = run(mqtt(&broker, &["sub", "-t", "e/#", "-E"]), None);
    assert_ok(&out);
    assert_eq!(stdout(&out), "");
}

#[test]
fn url_flag_carries_topic_and_credentials() {
    let broker = broker();
    let url = format!("mqtt://user:secret@127.0.0.1:{}/from/url", broker.port());
    let mut sub = Command::new(BIN);
    sub.args(["sub", "-L", &url, "-C", "1", "-v"]);
    let sub = spawn_subscribed(&broker, sub, &["-t", "from/url"]);
    let mut publish = Command::new(BIN);
    publish.args(["pub", "-L", &url, "-m", "via url"]);
    assert_ok(&run(publish, None));
    let got = finish(sub);
    assert_ok(&got);
    assert_eq!(stdout(&got), "from/url via url\n");
    assert!(
        broker.log().contains("u'user'"),
        "the user name reached the broker"
    );
}

#[test]
fn will_is_published_when_the_client_dies() {
    let broker = broker();
    let watcher = start_sub(&broker, &["-t", "wills/#", "-v", "-C", "1"]);
    let doomed_args = [
        "-t",
        "nothing",
        "--will-topic",
        "wills/cli",
        "--will-payload",
        "gone",
        "--will-qos",
        "1",
        "-k",
        "5",
    ];
    let mut doomed = start_sub(&broker, &doomed_args);
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let got = finish(watcher);
    assert_ok(&got);
    assert_eq!(stdout(&got), "wills/cli gone\n");
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_end_sub_with_disconnect_and_no_will() {
    let broker = broker();
    let port = broker.port().to_string();
    let mut subscribers = vec![("mqtt", Command::new(BIN))];
    subscribers[0].1.arg("sub");
    if let Some(client) = mosquitto_client("mosquitto_sub") {
        subscribers.push(("mosquitto", Command::new(client)));
    }
    for (who, template) in &subscribers {
        for signal in ["TERM", "INT"] {
            let id = format!("stopped-{who}-{signal}");
            let topic = format!("stop/{id}");
            let watcher = start_sub(&broker, &["-t", "wills/#", "-v", "-C", "1"]);
            let mut subscriber = Command::new(template.get_program());
            subscriber.args(template.get_args()).args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-i",
                &id,
                "-t",
                &topic,
                "--will-topic",
                "wills/stopped",
                "--will-payload",
                "gone",
            ]);
            let subscriber = spawn_subscribed(&broker, subscriber, &["-t", &topic]);
            let killed = Command::new("kill")
                .args([format!("-{signal}"), subscriber.id().to_string()])
                .status()
                .unwrap();
            assert!(killed.success());
            let out = finish(subscriber);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{who} {signal}: {}",
                stderr(&out)
            );
            assert!(
                broker.log_shows(&format!("Client {id} disconnected."), LOG_WAIT),
                "{who} {signal}: DISCONNECT reached the broker:\n{}",
                broker.log()
            );
            // The will was dropped: the first message the watcher gets is this one.
            assert_ok(&run(
                mqtt(&broker, &["pub", "-t", "wills/marker", "-m", "no will"]),
                None,
            ));
            assert_eq!(stdout(&finish(watcher)), "wills/marker no will\n");
        }
    }
}

#[test]
fn unreachable_broker_is_one_line_and_non_zero() {
    let port = mqtt_testkit::free_port();
    let out = run(
        {
            let mut c = Command::new(BIN);
            c.args([
                "pub",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "a",
                "-m",
                "b",
            ]);
            c
        },
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("Error: "), "{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"));
}

#[test]
fn refused_connection_exits_with_the_connack_code() {
    let broker = Mosquitto::start(
        MosquittoConfig::new()
            .extra("per_listener_settings false")
            .extra("allow_anonymous false"),
    );
    for tool in [&["pub", "-t", "a", "-m", "b"][..], &["sub", "-t", "a"]] {
        for (version, code, message) in [
            ("mqttv311", 5, "Connection Refused: not authorised."),
            ("mqttv31", 5, "Connection Refused: not authorised."),
            ("mqttv5", 135, "Not authorized"),
        ] {
            let args = [tool, &["-V", version]].concat();
            compare(&args, broker.port())
                .exits(code)
                .first_error_line(&format!("Connection error: {message}"));
        }
    }
}

#[test]
fn a_broker_without_mqtt_5_is_named_as_such() {
    // A broker that knows only 3.1.1 answers a 5.0 CONNECT with return code 1.
    let refuse: fn() -> mqtt_testkit::Script = || {
        Box::new(|conn| {
            conn.write_raw(&[0x20, 0x02, 0x00, 0x01]).unwrap();
            conn.drain(Duration::from_secs(5));
        })
    };
    // One connection for mqtt and one for mosquitto's client, for each command.
    let scripted = ScriptedBroker::start((0..4).map(|_| refuse()).collect());
    let port: u16 = scripted.url().rsplit(':').next().unwrap().parse().unwrap();
    for tool in [&["pub", "-t", "a", "-m", "b"][..], &["sub", "-t", "a"]] {
        compare(&[tool, &["-V", "mqttv5"]].concat(), port)
            .exits(132)
            .first_error_line(
                "Connection error: Unsupported Protocol Version. Try connecting to an MQTT v5 \
                 broker, or use MQTT v3.x mode.",
            );
    }
}

#[test]
fn a_refused_or_oversized_publish_is_a_warning_as_in_mosquitto_pub() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "topic read #\ntopic write allowed/#\n").unwrap();
    let broker = Mosquitto::start(
        MosquittoConfig::new()
            .extra(&format!("acl_file {}", acl.display()))
            .extra("max_packet_size 100")
            // mosquitto 2.0.11 drops a 5.0 client after a denied PUBLISH when the queue is
            // unlimited (the testkit's 0), for its own clients as for ours.
            .extra("max_queued_messages 1000"),
    );
    let port = broker.port();
    // PUBACK / PUBREC 0x87: both warn, go on with the next message and exit 0.
    for qos in ["1", "2"] {
        let args = ["pub", "-t", "denied", "-m", "x", "-q", qos, "-V", "mqttv5"];
        let compared = compare(&[&args[..], &["--repeat", "2"]].concat(), port);
        compared.exits(0);
        for (who, out) in compared.each() {
            assert_eq!(
                stderr(out),
                "Warning: Publish 1 failed: Not authorized.\n\
                 Warning: Publish 2 failed: Not authorized.\n",
                "{who}"
            );
        }
        let quiet = compare(&[&args[..], &["--quiet"]].concat(), port);
        quiet.exits(0);
        assert_eq!(stderr(&quiet.ours), "");
    }
    // Larger than the broker's maximum packet size: not sent, exit 0 (mosquitto_pub says
    // nothing; we say why).
    let big = "x".repeat(200);
    let args = [
        "pub",
        "-t",
        "allowed/big",
        "-m",
        &big,
        "-q",
        "1",
        "-V",
        "mqttv5",
    ];
    let compared = compare(&args, port);
    compared.exits(0);
    assert_eq!(
        stderr(&compared.ours),
        "Warning: Publish 1 failed: Packet too large.\n"
    );
}

#[test]
fn invalid_topics_are_usage_errors() {
    let port = mqtt_testkit::free_port();
    compare(&["pub", "-t", "a/#", "-m", "x"], port)
        .exits(1)
        .first_error_line("Error: Invalid publish topic 'a/#', does it contain '+' or '#'?");
    compare(&["sub", "-t", "a/#/b"], port)
        .exits(1)
        .first_error_line(
            "Error: Invalid subscription topic 'a/#/b', are all '+' and '#' wildcards correct?",
        );
}

#[test]
fn usage_errors_are_worded_and_numbered_as_mosquitto_does() {
    // Nothing listens on the port: each must fail before connecting.
    let port = mqtt_testkit::free_port();
    let cases: [(&[&str], &str); 8] = [
        (
            &["pub", "-q", "3", "-t", "a", "-m", "x"],
            "Invalid QoS given: 3",
        ),
        (
            &["pub", "--bogus", "-t", "a", "-m", "x"],
            "Unknown option '--bogus'.",
        ),
        (
            &["pub", "-t", "a", "-m", "x", "-n"],
            "Only one type of message can be sent at once.",
        ),
        (
            &["pub", "-t", "a"],
            "Both topic and message must be supplied.",
        ),
        (&["sub", "-q", "3", "-t", "a"], "Invalid QoS given: 3"),
        (
            &["sub", "-t", "a", "-V", "7"],
            "Invalid protocol version argument given.",
        ),
        (&["sub", "-t", "a", "-W", "0"], "Invalid timeout \"0\"."),
        (&["sub", "-v"], "You must specify a topic to subscribe to."),
    ];
    for (args, complaint) in cases {
        let compared = compare(args, port);
        compared
            .exits(1)
            .first_error_line(&format!("Error: {complaint}"));
        let err = stderr(&compared.ours);
        let hint = format!("Use 'mqtt {} --help' to see usage.", args[0]);
        assert!(err.ends_with(&format!("\n\n{hint}\n")), "{args:?}: {err}");
        assert!(
            !err.contains("Usage:"),
            "no usage line that looks required: {err}"
        );
    }
}

#[test]
fn help_and_version_exit_as_mosquitto_does() {
    let port = mqtt_testkit::free_port();
    for tool in ["pub", "sub"] {
        let help = compare(&[tool, "--help"], port);
        help.exits(1);
        assert!(stdout(&help.ours).contains("--host"));
        let version = compare(&[tool, "--version"], port);
        version.exits(1);
        for (who, out) in version.each() {
            assert!(stdout(out).contains(" version "), "{who}: {}", stdout(out));
        }
        assert_eq!(
            stdout(&version.ours),
            format!("mqtt {tool} version {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn a_silent_broker_cannot_hang_the_command_past_keep_alive() {
    // Accepts TCP connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "sub",
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        "a",
        "-k",
        "2",
    ]);
    let out = run(cmd, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    drop(silent);
}

#[test]
fn debug_lines_are_mosquitto_pubs_on_stdout() {
    let broker = broker();
    for qos in ["0", "1", "2"] {
        let args = [
            "pub",
            "-t",
            "d/p",
            "-m",
            "hello",
            "-q",
            qos,
            "-r",
            "--repeat",
            "2",
            "-i",
            "dpub",
            "-d",
            "-u",
            "alice",
            "-P",
            "hunter2-secret",
        ];
        let compared = compare(&args, broker.port());
        compared.exits(0);
        if let Some(theirs) = &compared.theirs {
            assert_eq!(stdout(&compared.ours), stdout(theirs), "QoS {qos}");
        }
        for (who, out) in compared.each() {
            let text = format!("{}{}", stdout(out), stderr(out));
            assert!(!text.contains("hunter2-secret"), "{who}: {text}");
            assert!(!text.contains('\x1b'), "{who}: no terminal colours: {text}");
        }
    }
    let out = run(
        mqtt(
            &broker,
            &[
                "pub", "-t", "d/p", "-m", "hello", "-q", "2", "-i", "dpub", "-d",
            ],
        ),
        None,
    );
    assert_ok(&out);
    assert_eq!(
        stdout(&out),
        "Client dpub sending CONNECT\n\
         Client dpub received CONNACK (0)\n\
         Client dpub sending PUBLISH (d0, q2, r0, m1, 'd/p', ... (5 bytes))\n\
         Client dpub received PUBREC (Mid: 1)\n\
         Client dpub sending PUBREL (m1)\n\
         Client dpub received PUBCOMP (Mid: 1, RC:0)\n\
         Client dpub sending DISCONNECT\n"
    );
    assert_eq!(stderr(&out), "");
}

#[test]
fn debug_lines_are_mosquitto_subs_on_stdout() {
    let broker = broker();
    let port = broker.port().to_string();
    let args = ["-t", "d/s", "-q", "2", "-C", "1", "-i", "dsub", "-d"];
    let mut subscribers = vec![Command::new(BIN)];
    subscribers[0].arg("sub");
    if let Some(client) = mosquitto_client("mosquitto_sub") {
        subscribers.push(Command::new(client));
    }
    for mut subscriber in subscribers {
        subscriber.args(args).args(["-h", "127.0.0.1", "-p", &port]);
        let who = format!("{:?}", subscriber.get_program());
        let subscriber = spawn_subscribed(&broker, subscriber, &args);
        assert_ok(&run(
            mqtt(&broker, &["pub", "-t", "d/s", "-m", "hello", "-q", "2"]),
            None,
        ));
        let out = finish(subscriber);
        assert_ok(&out);
        assert_eq!(
            stdout(&out),
            "Client dsub sending CONNECT\n\
             Client dsub received CONNACK (0)\n\
             Client dsub sending SUBSCRIBE (Mid: 1, Topic: d/s, QoS: 2, Options: 0x00)\n\
             Client dsub received SUBACK\n\
             Subscribed (mid: 1): 2\n\
             Client dsub received PUBLISH (d0, q2, r0, m1, 'd/s', ... (5 bytes))\n\
             Client dsub sending PUBREC (m1, rc0)\n\
             Client dsub received PUBREL (Mid: 1)\n\
             Client dsub sending PUBCOMP (m1)\n\
             hello\n\
             Client dsub sending DISCONNECT\n",
            "{who}"
        );
    }
}

#[test]
fn help_is_long_only_because_h_is_the_host() {
    let out = run(
        {
            let mut c = Command::new(BIN);
            c.args(["sub", "--help"]);
            c
        },
        None,
    );
    let help = stdout(&out);
    assert!(help.contains("--host"));
    assert!(
        help.contains("Defaults to mqtt_sub_ appended with the process id"),
        "the default client id, worded as mosquitto_sub's help words it: {help}"
    );
    let out = run(
        {
            let mut c = Command::new(BIN);
            c.args(["pub", "-h"]);
            c
        },
        None,
    );
    assert!(!out.status.success(), "-h takes a host argument");
}

#[test]
fn format_prints_fields_and_a_newline_unless_n() {
    let broker = broker();
    assert_ok(&run(
        mqtt(
            &broker,
            &["pub", "-t", "fmt/kept", "-m", "hello", "-r", "-q", "1"],
        ),
        None,
    ));
    let format = "%t|%p|%q|%r|%l|%x|%X|%-6p|%05l|%m";
    let sub = start_sub(
        &broker,
        &["-t", "fmt/#", "-q", "1", "-C", "2", "-F", format],
    );
    assert_ok(&run(
        mqtt(
            &broker,
            &["pub", "-t", "fmt/live", "-m", "\u{1}z", "-q", "1"],
        ),
        None,
    ));
    let got = finish(sub);
    assert_ok(&got);
    let out = stdout(&got);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(out.ends_with('\n'), "a newline after each message: {out:?}");
    // The message id of a QoS 1 message is the broker's packet identifier, never 0.
    let (retained, mid) = lines[0].rsplit_once('|').unwrap();
    assert_eq!(
        retained,
        "fmt/kept|hello|1|1|5|68656c6c6f|68656C6C6F|hello |00005"
    );
    assert!(mid.parse::<u16>().unwrap() > 0, "{mid}");
    let (live, mid) = lines[1].rsplit_once('|').unwrap();
    assert_eq!(live, "fmt/live|\u{1}z|1|0|2|017a|017A|\u{1}z    |00002");
    assert!(mid.parse::<u16>().unwrap() > 0, "{mid}");

    // -N drops the newline; escapes, JSON and times.
    let sub = start_sub(
        &broker,
        &["-t", "fmt/j", "-C", "1", "-N", "-F", r"%j\t%I\t%U\t@Y\t%m"],
    );
    assert_ok(&run(
        mqtt(&broker, &["pub", "-t", "fmt/j", "-m", "say \"hi\""]),
        None,
    ));
    let got = finish(sub);
    assert_ok(&got);
    let out = stdout(&got);
    let fields: Vec<&str> = out.split('\t').collect();
    assert_eq!(fields.len(), 5, "{out:?}");
    assert!(
        fields[0].starts_with(r#"{"tst":""#)
            && fields[0].ends_with(
                r#"Z+0000","topic":"fmt/j","qos":0,"retain":0,"payloadlen":8,"payload":"say \"hi\""}"#
            ),
        "{}",
        fields[0]
    );
    assert!(
        fields[1].len() == 24 && fields[1].ends_with("+0000"),
        "{}",
        fields[1]
    );
    let (secs, nanos) = fields[2].split_once('.').unwrap();
    assert!(secs.parse::<u64>().unwrap() > 1_600_000_000 && nanos.len() == 9);
    assert!(fields[1].starts_with(fields[3]), "@Y is the year of %I");
    assert_eq!(
        fields[4], "0",
        "QoS 0 messages have message id 0, and no newline"
    );

    // %j as mosquitto_sub prints it, the time's digits aside.
    assert_ok(&run(
        mqtt(
            &broker,
            &["pub", "-t", "fmt/json", "-m", "{\"a\":1}", "-r", "-q", "1"],
        ),
        None,
    ));
    let json = compare(
        &["sub", "-t", "fmt/json", "-q", "1", "-C", "1", "-F", "%j|%J"],
        broker.port(),
    );
    json.exits(0);
    // The arrival times differ; their shape must not.
    let without_times = |out: &Output| {
        let mut line = stdout(out);
        while let Some(at) = line.find(r#""tst":"2"#) {
            let value = at + r#""tst":""#.len();
            let end = value + line[value..].find('"').unwrap();
            let time = &line[value..end];
            assert!(time.len() == 32 && time.ends_with("Z+0000"), "{time}");
            line.replace_range(value..end, "TIME");
        }
        line
    };
    let expected = concat!(
        r#"{"tst":"TIME","topic":"fmt/json","qos":1,"retain":1,"payloadlen":7,"mid":1,"#,
        r#""payload":"{\"a\":1}"}|"#,
        r#"{"tst":"TIME","topic":"fmt/json","qos":1,"retain":1,"payloadlen":7,"mid":1,"#,
        r#""payload":{"a":1}}"#,
        "\n"
    );
    for (who, out) in json.each() {
        assert_eq!(without_times(out), expected, "{who}");
    }
}

#[test]
fn invalid_format_is_rejected_before_connecting() {
    // Nothing listens on the port: the error must come from the format, not the connection.
    let port = mqtt_testkit::free_port().to_string();
    for (format, complaint) in [
        ("%t %k", "invalid format specifier '%k'"),
        ("%t %", "incomplete format specifier"),
        (r"\q", "invalid escape"),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "a",
            "-F",
            format,
        ]);
        let out = run(cmd, None);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains(complaint), "{format}: {err}");
    }
}

#[test]
fn remove_retained_clears_what_it_receives() {
    let broker = broker();
    for (topic, payload) in [("rr/gone", "old"), ("rr/keep", "kept")] {
        assert_ok(&run(
            mqtt(
                &broker,
                &["pub", "-t", topic, "-m", payload, "-r", "-q", "1"],
            ),
            None,
        ));
    }
    // -T keeps rr/keep from being printed, counted or cleared.
    let out = run(
        mqtt(
            &broker,
            &[
                "sub",
                "-t",
                "rr/#",
                "-T",
                "rr/keep",
                "--remove-retained",
                "-C",
                "1",
                "-W",
                "10",
                "-v",
            ],
        ),
        None,
    );
    assert_ok(&out);
    assert_eq!(stdout(&out), "rr/gone old\n");
    // Only rr/keep is still retained.
    let out = run(
        mqtt(
            &broker,
            &["sub", "-t", "rr/#", "--retained-only", "-W", "2", "-v"],
        ),
        None,
    );
    assert_eq!(out.status.code(), Some(27), "{}", stderr(&out));
    assert_eq!(stdout(&out), "rr/keep kept\n");
}

#[test]
fn nodelay_is_accepted_by_both_commands() {
    let broker = broker();
    let sub = start_sub(&broker, &["-t", "nd", "-C", "1", "--nodelay"]);
    assert_ok(&run(
        mqtt(&broker, &["pub", "-t", "nd", "-m", "x", "--nodelay"]),
        None,
    ));
    let got = finish(sub);
    assert_ok(&got);
    assert_eq!(stdout(&got), "x\n");
}

#[test]
fn publish_and_subscribe_properties_reach_the_subscriber() {
    let broker = broker();
    let sub = start_sub(
        &broker,
        &[
            "-t",
            "props/#",
            "-C",
            "1",
            "-D",
            "subscribe",
            "subscription-identifier",
            "7",
            "-D",
            "subscribe",
            "user-property",
            "ignored",
            "by-the-broker",
            "-F",
            "%C|%P|%R|%D|%F|%S|%p|%E",
        ],
    );
    // -D alone means MQTT 5.0; values of three and four words mix.
    assert_ok(&run(
        mqtt(
            &broker,
            &[
                "pub",
                "-t",
                "props/a",
                "-m",
                "payload",
                "-q",
                "1",
                "-D",
                "publish",
                "content-type",
                "text/plain",
                "-D",
                "publish",
                "user-property",
                "k",
                "v",
                "-D",
                "publish",
                "user-property",
                "k2",
                "v 2",
                "-D",
                "publish",
                "response-topic",
                "re/ply",
                "-D",
                "publish",
                "correlation-data",
                "xyz",
                "-D",
                "publish",
                "payload-format-indicator",
                "1",
                "-D",
                "publish",
                "message-expiry-interval",
                "30",
            ],
        ),
        None,
    ));
    let got = finish(sub);
    assert_ok(&got);
    let out = stdout(&got);
    let (fixed, expiry) = out.trim_end().rsplit_once('|').unwrap();
    assert_eq!(fixed, "text/plain|k:v k2:v 2|re/ply|xyz|1|7|payload");
    // The broker forwards what is left of the expiry interval.
    assert!(["29", "30"].contains(&expiry), "{out:?}");
}

#[test]
fn properties_need_mqtt_5() {
    let port = mqtt_testkit::free_port().to_string();
    let mut cmd = Command::new(BIN);
    cmd.args(["pub", "-h", "127.0.0.1", "-p", &port, "-t", "a", "-m", "b"]);
    cmd.args(["-V", "mqttv311", "-D", "publish", "content-type", "x"]);
    let out = run(cmd, None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.lines().next().unwrap().contains("need MQTT 5.0"),
        "{err}"
    );
}

#[test]
fn connect_session_expiry_property_keeps_the_session() {
    let broker = broker();
    let session = ["-i", "keeper", "-q", "1", "-t", "se/t"];
    let expiry = ["-D", "connect", "session-expiry-interval", "60"];
    // Subscribe and leave: the broker keeps the session for 60 s...
    let mut first = mqtt(&broker, &["sub", "-E"]);
    first.args(session).args(expiry);
    assert_ok(&run(first, None));
    // ... and queues what is published meanwhile ...
    assert_ok(&run(
        mqtt(&broker, &["pub", "-t", "se/t", "-m", "queued", "-q", "1"]),
        None,
    ));
    // ... for the next connection that resumes it.
    let mut second = mqtt(&broker, &["sub", "-c", "-C", "1", "-W", "10"]);
    second.args(session).args(expiry);
    let out = run(second, None);
    assert_ok(&out);
    assert_eq!(stdout(&out), "queued\n");
}

#[test]
fn connect_maximum_packet_size_property_is_announced_and_kept() {
    let broker = broker();
    let sub = start_sub(
        &broker,
        &[
            "-t",
            "mp/#",
            "-C",
            "1",
            "-v",
            "-D",
            "connect",
            "maximum-packet-size",
            "64",
        ],
    );
    // The broker does not send a packet larger than the client accepts.
    let big = "x".repeat(200);
    for (topic, payload) in [("mp/big", big.as_str()), ("mp/small", "small")] {
        assert_ok(&run(
            mqtt(&broker, &["pub", "-t", topic, "-m", payload, "-q", "1"]),
            None,
        ));
    }
    let got = finish(sub);
    assert_ok(&got);
    assert_eq!(stdout(&got), "mp/small small\n");
}

#[test]
fn will_properties_are_sent_with_the_will() {
    let broker = broker();
    let watcher = start_sub(
        &broker,
        &["-t", "wp/#", "-C", "1", "-V", "5", "-F", "%t %C %p"],
    );
    let doomed_args = [
        "-t",
        "nothing",
        "--will-topic",
        "wp/cli",
        "--will-payload",
        "gone",
        "-D",
        "will",
        "content-type",
        "text/x-will",
        "-k",
        "5",
    ];
    let mut doomed = start_sub(&broker, &doomed_args);
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let got = finish(watcher);
    assert_ok(&got);
    assert_eq!(stdout(&got), "wp/cli text/x-will gone\n");
}

#[test]
fn tls_flags_choose_the_version_and_alpn() {
    let broker = Mosquitto::start(MosquittoConfig::new().tls());
    let ca = broker.certs().ca.cert_file.display().to_string();
    let port = broker.tls_port().to_string();
    let publish = |extra: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["pub", "-h", "127.0.0.1", "-p", &port, "--cafile", &ca]);
        cmd.args(["-t", "tls/flags", "-m", "x", "-q", "1"]);
        cmd.args(extra);
        run(cmd, None)
    };
    assert_ok(&publish(&[
        "--tls-version",
        "tlsv1.3",
        "--tls-alpn",
        "mqtt",
    ]));
    assert_ok(&publish(&["--tls-version", "tlsv1.2"]));
    let old = publish(&["--tls-version", "tlsv1.1"]);
    assert_eq!(old.status.code(), Some(1));
    assert!(
        stderr(&old).contains("only TLS 1.2 and 1.3"),
        "{}",
        stderr(&old)
    );
}

#[cfg(unix)]
#[test]
fn unix_socket_pub_and_sub() {
    let broker = Mosquitto::start(
        MosquittoConfig::new()
            .unix_socket()
            .extra("log_type subscribe"),
    );
    let url = broker.unix_url();
    let path = url.trim_start_matches("unix://");
    let sub = start_sub(
        &broker,
        &["--unix", path, "-t", "unix/t", "-C", "1", "-W", "10"],
    );
    assert_ok(&run(
        mqtt(
            &broker,
            &[
                "pub",
                "--unix",
                path,
                "-t",
                "unix/t",
                "-m",
                "over unix",
                "-q",
                "1",
            ],
        ),
        None,
    ));
    let out = finish(sub);
    assert_ok(&out);
    assert_eq!(stdout(&out), "over unix\n");
}

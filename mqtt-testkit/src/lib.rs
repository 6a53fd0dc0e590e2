//! Test support for the MQTT client crates: a private mosquitto broker per test, TLS
//! certificates made on the spot, and the integration suite that every async adapter runs.
//!
//! [`Mosquitto::start`] finds the `mosquitto` binary (on `PATH` or in `/usr/sbin`), writes a
//! configuration for loopback listeners on free ports in a temporary directory, starts the
//! broker and waits until it accepts connections. The broker is killed when the value drops,
//! so no process outlives its test. A missing broker is a failure, not a skipped test.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

pub mod cluster;
mod embedded;
mod hostile;
mod scripted;
pub mod sockets;
mod suite;
mod ws_bridge;

pub use cluster::RmqttCluster;
pub use embedded::embedded_broker;
pub use scripted::{indexed_publish, Conn, Script, ScriptedBroker};

/// How long a broker may take to accept connections after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate and its private key, as PEM text and as files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
    /// File holding `cert_pem`.
    pub cert_file: PathBuf,
    /// File holding `key_pem`.
    pub key_file: PathBuf,
}

/// Certificates for TLS tests: a CA, a server certificate for `localhost` and `127.0.0.1`,
/// a client certificate, and an unrelated CA that must not be trusted.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA that signed the server and client certificates.
    pub ca: CertFiles,
    /// The broker's certificate (names `localhost` and `127.0.0.1`).
    pub server: CertFiles,
    /// A client certificate signed by the CA.
    pub client: CertFiles,
    /// A CA that signed nothing here: trusting only it must fail verification.
    pub other_ca: CertFiles,
}

fn write_pair(dir: &Path, name: &str, cert_pem: String, key_pem: String) -> CertFiles {
    let cert_file = dir.join(format!("{name}.crt"));
    let key_file = dir.join(format!("{name}.key"));
    fs::write(&cert_file, &cert_pem).expect("write certificate");
    fs::write(&key_file, &key_pem).expect("write key");
    CertFiles {
        cert_pem,
        key_pem,
        cert_file,
        key_file,
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn leaf_params(name: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> CertificateParams {
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(sans).expect("certificate parameters");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params
}

impl TestCerts {
    /// Generates fresh certificates into `dir`.
    pub fn generate(dir: &Path) -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let params = ca_params("mqtt test CA");
        let ca_cert = params.self_signed(&ca_key).expect("CA certificate");
        let ca = write_pair(dir, "ca", ca_cert.pem(), ca_key.serialize_pem());
        let issuer = Issuer::new(params, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let server_cert = leaf_params(
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
        let server = write_pair(dir, "server", server_cert.pem(), server_key.serialize_pem());

        let client_key = KeyPair::generate().expect("client key");
        let client_cert = leaf_params("mqtt test client", &[], ExtendedKeyUsagePurpose::ClientAuth)
            .signed_by(&client_key, &issuer)
            .expect("client certificate");
        let client = write_pair(dir, "client", client_cert.pem(), client_key.serialize_pem());

        let other_key = KeyPair::generate().expect("other CA key");
        let other_cert = ca_params("unrelated CA")
            .self_signed(&other_key)
            .expect("other CA certificate");
        let other_ca = write_pair(dir, "other-ca", other_cert.pem(), other_key.serialize_pem());

        Self {
            ca,
            server,
            client,
            other_ca,
        }
    }
}

/// What to configure in a test broker beyond its plain loopback listener.
#[derive(Debug, Clone, Default)]
pub struct MosquittoConfig {
    persistence: bool,
    tls: bool,
    require_client_cert: bool,
    websockets: bool,
    websockets_tls: bool,
    unix_socket: bool,
    password: Option<(String, String)>,
    extra: Vec<String>,
}

impl MosquittoConfig {
    /// A plain MQTT listener only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps sessions and queued messages on disk across [`Mosquitto::restart`].
    pub fn persistence(mut self) -> Self {
        self.persistence = true;
        self
    }

    /// Adds an `mqtts://` listener with certificates from [`TestCerts`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Makes the TLS listeners require a client certificate signed by the test CA.
    pub fn require_client_cert(mut self) -> Self {
        self.tls = true;
        self.require_client_cert = true;
        self
    }

    /// Adds a `ws://` listener: a WebSocket front on loopback for the broker's TCP listener
    /// (mosquitto's own websockets listener would listen on every interface).
    pub fn websockets(mut self) -> Self {
        self.websockets = true;
        self
    }

    /// Adds a `wss://` listener, a WebSocket-over-TLS front on loopback like
    /// [`websockets`](Self::websockets), with the certificates of [`TestCerts`].
    pub fn websockets_tls(mut self) -> Self {
        self.websockets_tls = true;
        self
    }

    /// Adds a Unix domain socket listener (`unix://`, see [`Mosquitto::unix_url`]).
    pub fn unix_socket(mut self) -> Self {
        self.unix_socket = true;
        self
    }

    /// Refuses anonymous clients: only `user` with `password` may connect (see
    /// [`Mosquitto::set_password`] to change it).
    pub fn password(mut self, user: &str, password: &str) -> Self {
        self.password = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Adds a raw line to the configuration (global options go before the listeners).
    pub fn extra(mut self, line: &str) -> Self {
        self.extra.push(line.to_owned());
        self
    }

    fn needs_certs(&self) -> bool {
        self.tls || self.websockets_tls
    }
}

/// A mosquitto broker private to one test, on loopback ports picked at start.
#[derive(Debug)]
pub struct Mosquitto {
    binary: PathBuf,
    dir: TempDir,
    config_file: PathBuf,
    log_file: PathBuf,
    ports: Ports,
    certs: Option<TestCerts>,
    unix_socket: Option<PathBuf>,
    child: Option<Child>,
    /// WebSocket fronts (`ws`, `wss`), forwarding to the plain listener.
    bridges: Vec<ws_bridge::WsBridge>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Ports {
    mqtt: u16,
    tls: Option<u16>,
    ws: Option<u16>,
    wss: Option<u16>,
}

/// Finds the mosquitto binary; on a machine without it, installs it (Debian/Ubuntu, as root:
/// `apt-get install -y mosquitto`, once for every test process), or fails the test at once
/// with the command to run. `MQTT_TESTKIT_NO_INSTALL=1` turns the installing off.
pub fn mosquitto_binary() -> PathBuf {
    static FOUND: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let found = FOUND.get_or_init(|| {
        find_mosquitto().map_or_else(|| provision::install("mosquitto", find_mosquitto), Ok)
    });
    match found {
        Ok(path) => path.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// Finds mosquitto's own client `name` (`mosquitto_pub`, `mosquitto_sub`), for tests that
/// compare with it, installing the `mosquitto-clients` package like [`mosquitto_binary`]
/// installs the broker; or why it cannot.
pub fn mosquitto_client(name: &str) -> Result<PathBuf, String> {
    static INSTALLED: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    if let Some(found) = provision::on_path(name) {
        return Ok(found);
    }
    let find = || provision::on_path("mosquitto_pub");
    INSTALLED
        .get_or_init(|| provision::install("mosquitto-clients", find))
        .clone()?;
    provision::on_path(name).ok_or_else(|| format!("{name} is not in mosquitto-clients"))
}

/// The mosquitto binary on `PATH` or where Debian puts it.
fn find_mosquitto() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("mosquitto");
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Installing mosquitto on a fresh machine, so that the README's test command needs nothing
/// done by hand.
mod provision {
    use std::fs::{self, OpenOptions};
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// The longest an install may take, and the longest another test process waits for one.
    const INSTALL_LIMIT: Duration = Duration::from_secs(600);

    fn command_exists(name: &str) -> bool {
        on_path(name).is_some()
    }

    /// `name` in a directory of `PATH`.
    pub(super) fn on_path(name: &str) -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    }

    /// Installs `package` with apt-get, then finds what it brings with `find`; or says why
    /// not and what to run.
    pub(super) fn install(
        package: &str,
        find: impl Fn() -> Option<PathBuf>,
    ) -> Result<PathBuf, String> {
        let manual = format!(
            "{package} is not installed, and the integration tests need it: run \
             `sudo apt-get install -y {package}` (Debian/Ubuntu; `brew install mosquitto` on \
             macOS) and try again"
        );
        if std::env::var_os("MQTT_TESTKIT_NO_INSTALL").is_some() {
            return Err(manual);
        }
        if !super::running_as_root() || !command_exists("apt-get") {
            return Err(manual);
        }
        // One installer for every test process; the others wait for it.
        let lock = std::env::temp_dir().join("mqtt-testkit-install.lock");
        let deadline = Instant::now() + INSTALL_LIMIT;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(_) => {
                    let result = run_apt(package);
                    let _ = fs::remove_file(&lock);
                    result?;
                    break;
                }
                Err(_) => {
                    if let Some(found) = find() {
                        return Ok(found);
                    }
                    let stale = fs::metadata(&lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > INSTALL_LIMIT);
                    if stale {
                        let _ = fs::remove_file(&lock);
                    } else if Instant::now() > deadline {
                        return Err(format!(
                            "waited {INSTALL_LIMIT:?} for another install; {manual}"
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        find().ok_or_else(|| format!("apt-get installed nothing usable; {manual}"))
    }

    /// `apt-get update` (a fresh image has no package lists) and install; the service the
    /// package may start is stopped, as tests start their own brokers.
    fn run_apt(package: &str) -> Result<(), String> {
        eprintln!("mqtt-testkit: installing {package} (apt-get install -y {package}) ...");
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .map_err(|e| format!("cannot run apt-get: {e}"))
        };
        let _ = apt(&["update", "-q"]);
        let status = apt(&["install", "-y", "-q", package])?;
        if !status.success() {
            return Err(format!(
                "`apt-get install -y {package}` failed ({status}); run it by hand and try again"
            ));
        }
        for (tool, args) in [
            ("systemctl", ["stop", "mosquitto"]),
            ("service", ["mosquitto", "stop"]),
        ] {
            if command_exists(tool) {
                let _ = Command::new(tool)
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        Ok(())
    }
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A temporary directory, removed when the value drops.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// A loopback port that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    free_ports(1).first().copied().unwrap_or(1)
}

/// Picks `n` distinct free loopback ports (bound together, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

impl Mosquitto {
    /// Starts a broker with `config`; panics (failing the test) if it cannot.
    pub fn start(config: MosquittoConfig) -> Self {
        let binary = mosquitto_binary();
        let dir = tempfile::Builder::new()
            .prefix("mqtt-testkit-")
            .tempdir()
            .expect("temporary directory");
        let certs = config
            .needs_certs()
            .then(|| TestCerts::generate(dir.path()));
        let mut dir = dir;
        let mut last_log = String::new();
        // A port released by `free_ports` can be taken by someone else before the broker
        // binds it: try again with new ports.
        for _ in 0..3 {
            let wanted = 1 + usize::from(config.tls);
            let picked = free_ports(wanted);
            let mut picked = picked.into_iter();
            let mut ports = Ports {
                mqtt: picked.next().unwrap_or_default(),
                ..Ports::default()
            };
            if config.tls {
                ports.tls = picked.next();
            }
            let mut broker = Self::configured(&binary, dir, &config, ports, certs.clone());
            match broker.launch() {
                Ok(()) => {
                    broker.open_bridges(&config);
                    return broker;
                }
                Err(log) => {
                    if log.contains("websockets") && log.contains("not available") {
                        panic!(
                            "{} was built without websockets support; install a build with \
                             it (Debian's `mosquitto` package has it)\n{log}",
                            binary.display()
                        );
                    }
                    last_log = log;
                    dir = broker.take_dir();
                }
            }
        }
        panic!("mosquitto did not start:\n{last_log}");
    }

    /// The broker of `config` on `ports`, its files written in `dir`, not yet started.
    fn configured(
        binary: &Path,
        dir: TempDir,
        config: &MosquittoConfig,
        ports: Ports,
        certs: Option<TestCerts>,
    ) -> Self {
        if let Some((user, password)) = &config.password {
            write_password(&password_file(dir.path()), user, password);
        }
        let config_file = dir.path().join("mosquitto.conf");
        let log_file = dir.path().join("mosquitto.log");
        let text = render_config(config, ports, dir.path(), &log_file, certs.as_ref());
        fs::write(&config_file, text).expect("write mosquitto.conf");
        let unix_socket = config.unix_socket.then(|| unix_socket_path(dir.path()));
        Self {
            binary: binary.to_path_buf(),
            dir,
            config_file,
            log_file,
            ports,
            certs,
            unix_socket,
            child: None,
            bridges: Vec::new(),
        }
    }

    /// A broker with a plain listener only.
    pub fn plain() -> Self {
        Self::start(MosquittoConfig::new())
    }

    /// Starts the WebSocket fronts the configuration asks for.
    fn open_bridges(&mut self, config: &MosquittoConfig) {
        if config.websockets {
            let bridge = ws_bridge::WsBridge::start(self.ports.mqtt, None);
            self.ports.ws = Some(bridge.port());
            self.bridges.push(bridge);
        }
        if config.websockets_tls {
            let certs = self.certs();
            let tls = ws_bridge::tls_config(&certs.server.cert_pem, &certs.server.key_pem);
            let bridge = ws_bridge::WsBridge::start(self.ports.mqtt, Some(tls));
            self.ports.wss = Some(bridge.port());
            self.bridges.push(bridge);
        }
    }

    fn take_dir(mut self) -> TempDir {
        self.stop_child(true);
        let placeholder = tempfile::tempdir().expect("temporary directory");
        std::mem::replace(&mut self.dir, placeholder)
    }

    /// Starts the process and waits for every listener; on failure returns the log.
    fn launch(&mut self) -> Result<(), String> {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let ports: Vec<u16> = [
            Some(self.ports.mqtt),
            self.ports.tls,
            self.ports.ws,
            self.ports.wss,
        ]
        .into_iter()
        .flatten()
        .collect();
        for &port in &ports {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if let Some(child) = self.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        let mut stderr = String::new();
                        if let Some(mut pipe) = child.stderr.take() {
                            let _ = pipe.read_to_string(&mut stderr);
                        }
                        self.child = None;
                        return Err(format!("exited with {status}\n{stderr}\n{}", self.log()));
                    }
                }
                if Instant::now() > deadline {
                    self.stop_child(true);
                    return Err(format!(
                        "port {port} not open after {START_TIMEOUT:?}\n{}",
                        self.log()
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if let Some(port) = self.port_answered_by_another(&ports) {
            self.stop_child(true);
            return Err(format!(
                "port {port} answered, but not from the broker (another process took it)\n{}",
                self.log()
            ));
        }
        self.check_loopback_only();
        #[cfg(unix)]
        if let Some(path) = self.unix_socket.clone() {
            while std::os::unix::net::UnixStream::connect(&path).is_err() {
                if Instant::now() > deadline {
                    self.stop_child(true);
                    return Err(format!("no socket at {}\n{}", path.display(), self.log()));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }

    /// One of `ports` that the broker process does not listen on, though a connection to it
    /// was accepted: a port released by `free_ports` can be taken by another test's listener
    /// before the broker binds it, and the broker then exits while the other listener
    /// answers. `None` where `/proc` cannot tell.
    fn port_answered_by_another(&mut self, ports: &[u16]) -> Option<u16> {
        let exited = self
            .child
            .as_mut()
            .is_none_or(|child| !matches!(child.try_wait(), Ok(None)));
        if exited {
            return ports.first().copied();
        }
        let listening = sockets::listening_addresses(self.pid()?)?;
        ports
            .iter()
            .copied()
            .find(|port| !listening.iter().any(|addr| addr.port() == *port))
    }

    /// Fails (stopping the broker) unless every TCP socket it listens on is on loopback.
    fn check_loopback_only(&mut self) {
        let Some(pid) = self.pid() else {
            return;
        };
        let Some(addresses) = sockets::listening_addresses(pid) else {
            return; // no /proc: nothing to read
        };
        let exposed: Vec<_> = addresses
            .iter()
            .filter(|a| !sockets::is_loopback(a))
            .collect();
        if exposed.is_empty() {
            return;
        }
        self.stop_child(true);
        panic!(
            "the test broker listened beyond loopback on {exposed:?} (all: {addresses:?}); \
             stopped it"
        );
    }

    fn stop_child(&mut self, kill: bool) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if !kill {
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("kill -TERM {}", child.id()))
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.ports.mqtt)
    }

    /// `unix:///…/mqtt.sock` of the Unix socket listener.
    pub fn unix_url(&self) -> String {
        let path = self
            .unix_socket
            .as_ref()
            .expect("the broker has no Unix socket listener");
        format!("unix://{}", path.display())
    }

    /// The plain listener's port.
    pub fn port(&self) -> u16 {
        self.ports.mqtt
    }

    /// `mqtts://127.0.0.1:PORT` of the TLS listener.
    pub fn tls_url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.tls_port())
    }

    /// The TLS listener's port.
    pub fn tls_port(&self) -> u16 {
        self.ports.tls.expect("the broker has no TLS listener")
    }

    /// `ws://127.0.0.1:PORT/mqtt` of the WebSocket listener (a front on loopback that
    /// forwards to the broker).
    pub fn ws_url(&self) -> String {
        let port = self.ports.ws.expect("the broker has no WebSocket listener");
        format!("ws://127.0.0.1:{port}/mqtt")
    }

    /// `wss://localhost:PORT/mqtt` of the WebSocket-over-TLS listener.
    pub fn wss_url(&self) -> String {
        let port = self.ports.wss.expect("the broker has no wss listener");
        format!("wss://localhost:{port}/mqtt")
    }

    /// The certificates of the TLS listeners.
    pub fn certs(&self) -> &TestCerts {
        self.certs.as_ref().expect("the broker has no TLS listener")
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Whether the broker's log comes to hold `needle` within `limit`, read every 20 ms:
    /// mosquitto writes a line a moment after the event it records (a client's disconnection
    /// is logged after the client's process has exited).
    pub fn log_shows(&self, needle: &str, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The broker's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the broker process is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the broker with SIGKILL: connections drop at once and nothing is saved.
    pub fn kill(&mut self) {
        self.stop_child(true);
    }

    /// Stops the broker with SIGTERM and waits: with persistence on, it saves its state.
    pub fn stop(&mut self) {
        self.stop_child(false);
    }

    /// Replaces the password file with one entry, `user` with `password`; the broker reads
    /// it again at once (SIGHUP). Connections already accepted stay.
    pub fn set_password(&mut self, user: &str, password: &str) {
        write_password(&password_file(self.dir.path()), user, password);
        if let Some(child) = self.child.as_ref() {
            let _ = Command::new("kill")
                .arg("-HUP")
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Starts the broker again (stopping it first if it runs), on the same ports and
    /// persistence directory.
    pub fn restart(&mut self) {
        self.stop_child(true);
        // The ports were ours a moment ago; a short retry covers sockets still closing.
        let mut last = String::new();
        for _ in 0..20 {
            match self.launch() {
                Ok(()) => return,
                Err(log) => last = log,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("mosquitto did not restart:\n{last}");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop_child(true);
        if std::thread::panicking() {
            // The test failed: its captured output is shown, so add what the broker saw.
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!("--- mosquitto log (last {} lines) ---", tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

/// How much of the broker's log a failing test prints.
const LOG_TAIL_LINES: usize = 200;

fn render_config(
    config: &MosquittoConfig,
    ports: Ports,
    dir: &Path,
    log_file: &Path,
    certs: Option<&TestCerts>,
) -> String {
    let mut lines = vec![
        "# Written by mqtt-testkit for one test.".to_owned(),
        format!("allow_anonymous {}", config.password.is_none()),
        format!("log_dest file {}", log_file.display()),
        "log_type error".to_owned(),
        "log_type warning".to_owned(),
        "log_type notice".to_owned(),
        "log_type information".to_owned(),
        "connection_messages true".to_owned(),
        // `MQTT_TESTKIT_DEBUG_LOG` set: log every packet, for reading with `Mosquitto::log`.
        format!(
            "log_type {}",
            if env::var_os("MQTT_TESTKIT_DEBUG_LOG").is_some() {
                "debug"
            } else {
                "notice"
            }
        ),
        // Tests publish bursts to slow subscribers: queue without limit, drop nothing.
        "max_queued_messages 0".to_owned(),
        "set_tcp_nodelay true".to_owned(),
    ];
    if running_as_root() {
        // Keep root rather than switching to a `mosquitto` user that cannot read the
        // temporary directory.
        lines.push("user root".to_owned());
    }
    if config.persistence {
        let data = dir.join("data");
        fs::create_dir_all(&data).expect("persistence directory");
        lines.push("persistence true".to_owned());
        lines.push(format!("persistence_location {}/", data.display()));
        lines.push("autosave_interval 1".to_owned());
    }
    if config.password.is_some() {
        lines.push(format!("password_file {}", password_file(dir).display()));
    }
    lines.extend(config.extra.iter().cloned());
    lines.push(format!("listener {} 127.0.0.1", ports.mqtt));
    let tls_lines = |lines: &mut Vec<String>| {
        if let Some(certs) = certs {
            lines.push(format!("cafile {}", certs.ca.cert_file.display()));
            lines.push(format!("certfile {}", certs.server.cert_file.display()));
            lines.push(format!("keyfile {}", certs.server.key_file.display()));
            lines.push(format!(
                "require_certificate {}",
                config.require_client_cert
            ));
        }
    };
    if let Some(port) = ports.tls {
        lines.push(format!("listener {port} 127.0.0.1"));
        tls_lines(&mut lines);
    }
    if config.unix_socket {
        // Port 0 and a path: a Unix domain socket listener (mosquitto 2.0 and later).
        lines.push(format!("listener 0 {}", unix_socket_path(dir).display()));
    }
    lines.push(String::new());
    lines.join("\n")
}

/// The password file of a broker in `dir`.
fn password_file(dir: &Path) -> PathBuf {
    dir.join("passwd")
}

/// Writes a password file with one entry, hashed by `mosquitto_passwd` (next to the broker
/// in the mosquitto package).
fn write_password(file: &Path, user: &str, password: &str) {
    let _ = fs::remove_file(file);
    let status = Command::new("mosquitto_passwd")
        .arg("-c")
        .arg("-b")
        .arg(file)
        .arg(user)
        .arg(password)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run mosquitto_passwd (from the mosquitto package): {e}")
        });
    assert!(status.success(), "mosquitto_passwd failed: {status}");
}

/// Where a broker in `dir` listens on a Unix socket.
fn unix_socket_path(dir: &Path) -> PathBuf {
    dir.join("mqtt.sock")
}

/// Runs two futures at once on the current task; their outputs once both are done.
pub async fn join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let mut out_a = None;
    let mut out_b = None;
    std::future::poll_fn(|cx| {
        if out_a.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                out_a = Some(v);
            }
        }
        if out_b.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                out_b = Some(v);
            }
        }
        if out_a.is_some() && out_b.is_some() {
            if let (Some(a), Some(b)) = (out_a.take(), out_b.take()) {
                return std::task::Poll::Ready((a, b));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_another_listener_answers_is_not_taken_for_the_broker() {
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = other.local_addr().unwrap().port();
        let ports = Ports {
            mqtt: port,
            ..Ports::default()
        };
        let config = MosquittoConfig::new();
        let mut broker =
            Mosquitto::configured(&mosquitto_binary(), tempdir(), &config, ports, None);
        let err = broker.launch().unwrap_err();
        assert!(
            err.contains(&format!("port {port} answered, but not from the broker")),
            "{err}"
        );
        assert!(!broker.is_running());
        drop(other);
    }
}

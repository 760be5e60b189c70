//! nginx (plain or TLS, with or without `proxy_protocol`) and the self-signed certificates
//! it serves.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use super::{require, run_bounded, wait_listening};
use crate::common::{free_port, temp_dir, wait_for};

/// A self-signed certificate and its key, made by the openssl CLI.
pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Cert {
    /// A certificate for `names` (the first is the CN, all are subjectAltNames) in `dir`.
    pub fn self_signed(dir: &Path, names: &[&str]) -> Cert {
        require("openssl", "openssl");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        let out = run_bounded(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .arg("-subj")
                .arg(format!("/CN={}", names[0]))
                .arg("-addext")
                .arg(format!("subjectAltName={}", san.join(",")))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cert { cert, key }
    }
}

/// How an nginx peer listens.
pub struct NginxSpec<'a> {
    /// Answers every request with this body and a newline.
    pub body: &'a str,
    /// `listen ... proxy_protocol`: every connection must start with a PROXY header.
    pub proxy_protocol: bool,
    /// `listen ... ssl` with this certificate.
    pub tls: Option<&'a Cert>,
    /// How many ports to listen on (the same server on each; `$server_port` tells them
    /// apart in the access log).
    pub ports: usize,
}

impl NginxSpec<'_> {
    pub fn plain(body: &str) -> NginxSpec<'_> {
        NginxSpec {
            body,
            proxy_protocol: false,
            tls: None,
            ports: 1,
        }
    }
}

/// One line of an nginx peer's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `$proxy_protocol_addr:$proxy_protocol_port`: `None` when the connection carried no
    /// address (no header, or a LOCAL / UNKNOWN one).
    pub proxy_src: Option<String>,
    /// `$proxy_protocol_server_addr:$proxy_protocol_server_port`, `None` likewise.
    pub proxy_dst: Option<String>,
    /// `$remote_addr:$remote_port`: the TCP peer.
    pub remote: String,
    pub server_port: u16,
    pub request: String,
    pub status: u16,
    /// `$ssl_server_name`, `None` without TLS or SNI.
    pub sni: Option<String>,
}

/// nginx in one process (`master_process off`, `daemon off`), with its config, logs and temp
/// paths in its own directory. Killed on drop.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    ports: Vec<u16>,
}

impl Nginx {
    pub fn start(spec: &NginxSpec<'_>) -> Nginx {
        require("nginx", "nginx-light");
        let dir = temp_dir("nginx");
        let ports: Vec<u16> = (0..spec.ports.max(1)).map(|_| free_port()).collect();
        let d = dir.display();
        let mut opts = String::new();
        if spec.tls.is_some() {
            opts.push_str(" ssl");
        }
        if spec.proxy_protocol {
            opts.push_str(" proxy_protocol");
        }
        let listens: String = ports
            .iter()
            .map(|p| format!("        listen 127.0.0.1:{p}{opts};\n"))
            .collect();
        let tls = spec.tls.map_or_else(String::new, |c| {
            format!(
                "        ssl_certificate {};\n        ssl_certificate_key {};\n",
                c.cert.display(),
                c.key.display()
            )
        });
        let body = spec.body;
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format peer '$proxy_protocol_addr|$proxy_protocol_port|$proxy_protocol_server_addr|$proxy_protocol_server_port|$remote_addr:$remote_port|$server_port|$status|$ssl_server_name|$request';
    access_log {d}/access.log peer;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type text/plain;
    keepalive_timeout 0;
    server {{
{listens}{tls}        location / {{ return 200 "{body}\n"; }}
    }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).expect("write nginx.conf");
        let mut child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let error_log = dir.join("error.log");
        for &p in &ports {
            wait_listening(&mut child, p, "nginx", || {
                fs::read_to_string(&error_log).unwrap_or_default()
            });
        }
        Nginx { child, dir, ports }
    }

    /// The first listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr_n(0)
    }

    pub fn addr_n(&self, n: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[n]))
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// The access log so far, parsed.
    pub fn access(&self) -> Vec<Access> {
        fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(parse_access)
            .collect()
    }

    /// Waits (bounded) for an access line satisfying `pred`.
    pub fn wait_access(&self, timeout: Duration, pred: impl Fn(&Access) -> bool) -> Option<Access> {
        wait_for(timeout, || self.access().into_iter().find(|a| pred(a)))
    }

    /// Lines of the error log containing `needle`.
    pub fn error_lines(&self, needle: &str) -> Vec<String> {
        self.error_log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("nginx files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn parse_access(line: &str) -> Option<Access> {
    let f: Vec<&str> = line.splitn(9, '|').collect();
    if f.len() != 9 {
        return None;
    }
    let given = |s: &str| !s.is_empty() && s != "-";
    let pair = |a: &str, p: &str| (given(a) && given(p)).then(|| format!("{a}:{p}"));
    Some(Access {
        proxy_src: pair(f[0], f[1]),
        proxy_dst: pair(f[2], f[3]),
        remote: f[4].to_owned(),
        server_port: f[5].parse().ok()?,
        status: f[6].parse().ok()?,
        sni: given(f[7]).then(|| f[7].to_owned()),
        request: f[8].to_owned(),
    })
}

//! HAProxy in TCP mode, in front of ringlb.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;

use super::{require, wait_listening};
use crate::common::{free_port, temp_dir};

/// HAProxy in TCP mode, in the foreground (`-db`), with one server: `server s1 <target>
/// <server_opts>`. Killed on drop.
pub struct Haproxy {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Haproxy {
    pub fn start(target: SocketAddr, server_opts: &str) -> Haproxy {
        require("haproxy", "haproxy");
        let dir = temp_dir("haproxy");
        let port = free_port();
        let conf = format!(
            "global\n    maxconn 256\n\
             defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
             backend be\n    server s1 {target} {server_opts}\n"
        );
        let conf_path = dir.join("haproxy.cfg");
        fs::write(&conf_path, conf).expect("write haproxy.cfg");
        let log_path = dir.join("haproxy.log");
        let log = fs::File::create(&log_path).expect("create haproxy log");
        let mut child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn haproxy");
        wait_listening(&mut child, port, "haproxy", || {
            fs::read_to_string(&log_path).unwrap_or_default()
        });
        Haproxy { child, dir, port }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("haproxy files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

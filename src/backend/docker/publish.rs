//! `ports`: each listed container port of a service is reachable from this machine at
//! `127.0.0.1:<ephemeral port>` for the life of the environment.
//!
//! Docker's own publishing (`-p`) is not used: the daemon does not publish ports of a
//! container whose only network is internal, and making the environment network external
//! would give every service of an untrusted test file network access beyond it. Instead clnrm
//! listens on 127.0.0.1 (never another address: a test file cannot open a port to other
//! machines) and forwards each TCP connection to the container's address on the environment
//! network, which the host reaches through the network's bridge. The listeners close when the
//! environment is removed, and with the process if it dies: nothing stays published.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::backend::BackendError;
use crate::suite::PublishedPort;

/// The only address published ports are bound to.
pub(crate) const BIND: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The published ports of one environment and the tasks forwarding them.
#[derive(Default)]
pub(crate) struct Published {
    pub ports: Vec<PublishedPort>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published")
            .field("ports", &self.ports)
            .finish()
    }
}

impl Published {
    /// Publish `ports` of `service`, whose container has `ip` on the environment network.
    pub async fn add(
        &mut self,
        service: &str,
        ip: IpAddr,
        ports: &[u16],
    ) -> Result<(), BackendError> {
        for &port in ports {
            let listener =
                TcpListener::bind((BIND, 0))
                    .await
                    .map_err(|e| BackendError::Service {
                        service: service.to_string(),
                        message: format!("publish port {port} on {BIND}: {e}"),
                    })?;
            let host_port = listener
                .local_addr()
                .map_err(|e| BackendError::Service {
                    service: service.to_string(),
                    message: format!("publish port {port}: {e}"),
                })?
                .port();
            let target = SocketAddr::new(ip, port);
            let task = tokio::spawn(forward(listener, target, MAX_CONNECTIONS));
            self.tasks.lock().expect("publish lock poisoned").push(task);
            self.ports.push(PublishedPort {
                service: service.to_string(),
                container_port: port,
                host_port,
                in_network: format!("{service}:{port}"),
            });
        }
        Ok(())
    }

    /// Stop listening and drop every forwarded connection; returns once the listeners are
    /// closed. Idempotent.
    pub async fn close(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("publish lock poisoned"));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.get_mut() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
    }
}

/// Connections one published port forwards at once; more wait in the listen backlog, so a
/// local process opening connections in a loop cannot exhaust clnrm's file descriptors.
const MAX_CONNECTIONS: usize = 256;

/// Accept on `listener` and copy bytes both ways between each client and `target`, at most
/// `max` at once. The connections live in a set owned by this task, so aborting it ends them
/// all.
async fn forward(listener: TcpListener, target: SocketAddr, max: usize) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if conns.len() < max => match accepted {
                Ok((mut client, _)) => {
                    conns.spawn(async move {
                        // The service may not listen yet (or any more): the client then sees
                        // its connection closed, as with a refused one.
                        if let Ok(mut upstream) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                    });
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An echo server on loopback standing in for a container's port.
    async fn echo() -> (u16, JoinHandle<()>) {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, task)
    }

    #[tokio::test]
    async fn forwards_on_loopback_and_stops_when_closed() {
        let (target, server) = echo().await;
        let mut p = Published::default();
        p.add("app", IpAddr::V4(Ipv4Addr::LOCALHOST), &[target])
            .await
            .expect("publish");
        assert_eq!(p.ports.len(), 1);
        let published = &p.ports[0];
        assert_eq!(
            (published.container_port, published.in_network.as_str()),
            (target, format!("app:{target}").as_str())
        );
        assert_ne!(published.host_port, target);
        let addr = SocketAddr::new(IpAddr::V4(BIND), published.host_port);
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        c.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
        p.close().await;
        // The open connection is ended, and the port no longer accepts.
        let mut rest = Vec::new();
        let n = c.read_to_end(&mut rest).await.unwrap_or(0);
        assert_eq!(n, 0);
        assert!(TcpStream::connect(addr).await.is_err());
        server.abort();
    }

    #[tokio::test]
    async fn forwards_at_most_max_connections_at_once() {
        const MAX: usize = 8;
        let (target, server) = echo().await;
        let listener = TcpListener::bind((BIND, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let fwd = tokio::spawn(forward(
            listener,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), target),
            MAX,
        ));
        async fn echoed(c: &mut TcpStream) -> bool {
            let mut got = [0u8; 1];
            c.write_all(b"x").await.is_ok()
                && tokio::time::timeout(Duration::from_millis(500), c.read_exact(&mut got))
                    .await
                    .is_ok_and(|r| r.is_ok())
        }
        let mut open = Vec::new();
        for _ in 0..MAX {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            assert!(
                echoed(&mut c).await,
                "a connection under the cap is forwarded"
            );
            open.push(c);
        }
        // One more waits in the backlog, unserved, until a forwarded one ends.
        let mut extra = TcpStream::connect(addr).await.expect("connect (backlog)");
        assert!(!echoed(&mut extra).await, "the cap was not applied");
        drop(open.pop());
        let mut got = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(10), extra.read_exact(&mut got))
            .await
            .expect("served once a slot is free")
            .expect("read");
        fwd.abort();
        server.abort();
    }
}

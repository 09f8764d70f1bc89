//! The host side of the agent protocol: one connection per service container, one step at a
//! time, results in the same shape as a Docker exec.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::Mutex;

use super::protocol::{self, Exit, Failed, Hello, Kind, ProtocolError, Run};
use crate::backend::capture::Capture;
use crate::backend::{BackendError, ExecOutput, ExecRequest};

/// Time the agent gets beyond a step's own timeout to report it (the kill, the output drain):
/// past that it counts as not answering.
const ANSWER_GRACE: Duration = Duration::from_secs(5);

/// Exit code `docker exec` reports when the command cannot be started.
pub const CANNOT_EXEC: i64 = 126;

#[derive(Debug)]
pub struct AgentConn {
    stream: Mutex<UnixStream>,
    /// Set while a step is in flight; a step abandoned half-way (its future dropped) leaves
    /// the stream out of step, so the connection refuses further use.
    broken: AtomicBool,
    pub hello: Hello,
}

impl AgentConn {
    /// Connect to the agent socket and read its greeting, within `timeout`.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<AgentConn, String> {
        let fut = async {
            let mut stream = UnixStream::connect(socket)
                .await
                .map_err(|e| format!("connect {}: {e}", socket.display()))?;
            let (kind, body) = read_frame(&mut stream)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("agent closed the connection before greeting")?;
            if kind != Kind::Hello {
                return Err(format!("agent greeted with {kind:?}"));
            }
            let hello: Hello = protocol::parse(kind, &body).map_err(|e| e.to_string())?;
            if hello.version != protocol::VERSION {
                return Err(ProtocolError::Version(hello.version).to_string());
            }
            Ok(AgentConn {
                stream: Mutex::new(stream),
                broken: AtomicBool::new(false),
                hello,
            })
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| format!("no greeting from the agent within {timeout:?}"))?
    }

    /// Run one step. `Err` means the agent failed (the environment must be discarded); a
    /// step that cannot start is an `Ok` with exit code 126, as with `docker exec`.
    pub async fn run(&self, req: &ExecRequest) -> Result<ExecOutput, BackendError> {
        let started = Instant::now();
        let mut stream = self.stream.lock().await;
        if self.broken.swap(true, Ordering::SeqCst) {
            return Err(agent_error(
                "connection is unusable after an abandoned step",
            ));
        }
        let run = Run {
            argv: req.argv.clone(),
            env: req.env.clone(),
            workdir: req.workdir.clone(),
            user: None,
            timeout_ms: req.timeout.as_millis().try_into().unwrap_or(u64::MAX),
            // Everything is sent; the host keeps head and tail exactly as for an exec.
            output_cap: u64::MAX,
        };
        let body = serde_json::to_vec(&run).map_err(|e| agent_error(e.to_string()))?;
        stream
            .write_all(&protocol::encode_frame(Kind::Run, &body))
            .await
            .map_err(|e| agent_error(format!("send step: {e}")))?;
        let deadline = tokio::time::Instant::now() + req.timeout + ANSWER_GRACE;
        let mut out = ExecOutput::default();
        let (mut so, mut se) = (Capture::default(), Capture::default());
        loop {
            let frame = tokio::time::timeout_at(deadline, read_frame(&mut stream))
                .await
                .map_err(|_| {
                    agent_error(format!(
                        "the agent stopped answering ({} ms after the step's timeout)",
                        ANSWER_GRACE.as_millis()
                    ))
                })?
                .map_err(|e| agent_error(format!("read: {e}")))?;
            let Some((kind, body)) = frame else {
                return Err(agent_error(
                    "connection closed during a step (container stopped or agent died)",
                ));
            };
            match kind {
                Kind::Stdout => so.push(&body),
                Kind::Stderr => se.push(&body),
                Kind::Exit => {
                    let exit: Exit =
                        protocol::parse(kind, &body).map_err(|e| agent_error(e.to_string()))?;
                    out.exit_code = exit.code.map(i64::from);
                    out.timed_out = exit.timed_out;
                    break;
                }
                Kind::Error => {
                    let f: Failed =
                        protocol::parse(kind, &body).map_err(|e| agent_error(e.to_string()))?;
                    out.exit_code = Some(CANNOT_EXEC);
                    so.push(f.message.as_bytes());
                    so.push(b"\n");
                    break;
                }
                other => return Err(agent_error(format!("unexpected {other:?} frame"))),
            }
        }
        (out.stdout, out.stdout_cut) = so.finish();
        (out.stderr, out.stderr_cut) = se.finish();
        self.broken.store(false, Ordering::SeqCst);
        out.duration = started.elapsed();
        Ok(out)
    }
}

fn agent_error(msg: impl std::fmt::Display) -> BackendError {
    BackendError::Other(format!("step agent: {msg}"))
}

async fn read_frame(s: &mut UnixStream) -> Result<Option<(Kind, Vec<u8>)>, ProtocolError> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Err(ProtocolError::Empty);
    }
    if len > protocol::MAX_FRAME + 1 {
        return Err(ProtocolError::TooLarge(len));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await?;
    let kind = protocol::kind_of(buf[0]).ok_or(ProtocolError::UnknownKind(buf[0]))?;
    buf.remove(0);
    Ok(Some((kind, buf)))
}

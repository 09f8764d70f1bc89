//! The step protocol between clnrm and its in-container agent (docs/agent-protocol.md).
//!
//! A stream of frames, each `u32` big-endian length (of what follows), one type byte, then the
//! payload. Control frames carry JSON; output frames carry raw bytes. The agent speaks first
//! (`Hello` with the protocol version); then the client sends `Run` and reads `Stdout` /
//! `Stderr` frames until one `Exit` or `Error`. One step at a time per connection.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change; both sides refuse a version they do not know.
pub const VERSION: u32 = 1;

/// Largest frame accepted (type byte + payload): output is sent in chunks well below this.
pub const MAX_FRAME: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Hello = 1,
    Run = 2,
    Stdout = 3,
    Stderr = 4,
    Exit = 5,
    Error = 6,
}

/// The frame type of a type byte.
pub fn kind_of(b: u8) -> Option<Kind> {
    Kind::from_byte(b)
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Run,
            3 => Kind::Stdout,
            4 => Kind::Stderr,
            5 => Kind::Exit,
            6 => Kind::Error,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// The agent's pid in the container (1 when it is the container's init).
    pub pid: u32,
}

/// One step to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Executed as is (no shell); `argv[0]` is looked up in `PATH`.
    pub argv: Vec<String>,
    /// Added to the container's environment (the agent's own), overriding equal names.
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    /// `uid` or `uid:gid` (numeric); `None` runs as the container's user.
    pub user: Option<String>,
    /// The step's process group is killed after this long.
    pub timeout_ms: u64,
    /// Bytes of each stream to send back at most.
    pub output_cap: u64,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// Exit status when it exited; `128 + signal` when a signal ended it (as a shell
    /// reports it, and as `docker exec` does).
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Spawn to exit, measured by the agent.
    pub duration_us: u64,
    /// Bytes the process wrote (including what the cap left out).
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
}

/// The step could not be run at all (the agent is fine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("unknown frame type {0}")]
    UnknownKind(u8),
    #[error("empty frame")]
    Empty,
    #[error("bad {kind:?} frame: {err}")]
    Json { kind: Kind, err: serde_json::Error },
    #[error("unexpected {0:?} frame")]
    Unexpected(Kind),
    #[error("agent speaks protocol version {0}, this clnrm speaks {VERSION}")]
    Version(u32),
}

/// Write one frame (one `write_all`, so frames from several threads never interleave when
/// the writer is behind a lock).
pub fn write_frame(w: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    w.write_all(&encode_frame(kind, payload))
}

/// The bytes of one frame. Payloads are bounded by [`MAX_FRAME`] by every writer here.
pub fn encode_frame(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() + 1) as u32;
    let mut buf = Vec::with_capacity(payload.len() + 5);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(payload);
    buf
}

pub fn write_json<T: Serialize>(w: &mut impl Write, kind: Kind, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_frame(w, kind, &body)
}

/// Read one frame; `Ok(None)` on a clean end of stream between frames.
pub fn read_frame(r: &mut impl Read) -> Result<Option<(Kind, Vec<u8>)>, ProtocolError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Err(ProtocolError::Empty);
    }
    if len > MAX_FRAME + 1 {
        return Err(ProtocolError::TooLarge(len));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    let kind = Kind::from_byte(buf[0]).ok_or(ProtocolError::UnknownKind(buf[0]))?;
    buf.remove(0);
    Ok(Some((kind, buf)))
}

pub fn parse<T: for<'de> Deserialize<'de>>(kind: Kind, body: &[u8]) -> Result<T, ProtocolError> {
    serde_json::from_slice(body).map_err(|err| ProtocolError::Json { kind, err })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut buf = Vec::new();
        write_frame(&mut buf, Kind::Stdout, b"hello").unwrap();
        let run = Run {
            argv: vec!["printf".into(), "a b".into()],
            env: BTreeMap::from([("K".into(), "v=1".into())]),
            workdir: Some("/tmp".into()),
            user: None,
            timeout_ms: 5,
            output_cap: 7,
        };
        write_json(&mut buf, Kind::Run, &run).unwrap();
        let mut r = buf.as_slice();
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((Kind::Stdout, b"hello".to_vec()))
        );
        let (k, body) = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(k, Kind::Run);
        assert_eq!(parse::<Run>(k, &body).unwrap(), run);
        assert!(read_frame(&mut r).unwrap().is_none());
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        let mut r: &[u8] = &[0, 0, 0, 0];
        assert!(matches!(read_frame(&mut r), Err(ProtocolError::Empty)));
        let mut r: &[u8] = &[0xff, 0, 0, 0, 1];
        assert!(matches!(
            read_frame(&mut r),
            Err(ProtocolError::TooLarge(_))
        ));
        let mut r: &[u8] = &[0, 0, 0, 1, 99];
        assert!(matches!(
            read_frame(&mut r),
            Err(ProtocolError::UnknownKind(99))
        ));
        // Truncated in the middle of a frame.
        let mut r: &[u8] = &[0, 0, 0, 9, 3, b'x'];
        assert!(matches!(read_frame(&mut r), Err(ProtocolError::Io(_))));
        assert!(parse::<Exit>(Kind::Exit, b"{").is_err());
    }
}

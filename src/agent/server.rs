//! `clnrm __agent`: the process inside a service container that runs steps.
//!
//! It is the container's init: it reaps every orphan (it is PID 1, or a child subreaper when
//! something else is), forwards SIGTERM and friends to the service's own process as tini does
//! and exits with that process's status, or is the keep-alive process itself when the service
//! has no command. It serves steps on a unix socket in a directory the host bind-mounts; the
//! first client is the owner: when it goes away (clnrm exited or was killed) the agent ends,
//! and with it every process of the container.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::protocol::{self, Exit, Failed, Hello, Kind, ProtocolError, Run};

/// Signals passed on to the service's process (SIGKILL and SIGSTOP cannot be caught).
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// After a timeout kill, how long output is still drained (a process that left the step's
/// group may hold the pipes open; the step does not wait for it).
const DRAIN_AFTER_KILL: Duration = Duration::from_secs(1);

/// Pids this process waits for itself; the reaper leaves them alone.
struct Known {
    pids: Mutex<HashSet<i32>>,
}

impl Known {
    /// Spawn under the lock so the reaper cannot reap the child before it is known.
    fn spawn(&self, cmd: &mut Command) -> io::Result<Child> {
        let mut pids = self.pids.lock().unwrap_or_else(|e| e.into_inner());
        let child = cmd.spawn()?;
        pids.insert(child.id() as i32);
        Ok(child)
    }

    fn wait(&self, child: &mut Child) -> io::Result<ExitStatus> {
        let st = child.wait();
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(child.id() as i32));
        st
    }

    fn contains(&self, pid: i32) -> bool {
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&pid)
    }
}

/// Run the agent: serve `socket`, run `service` (argv, may be empty) as the service process.
/// Returns the exit code for the process (only on a setup failure or when the owner leaves;
/// the service's exit ends the process from the waiting thread).
pub fn run_agent(socket: &Path, service: Vec<OsString>) -> i32 {
    // Block the forwarded signals before any thread exists, so all threads inherit the mask
    // and only `sigwait` below sees them. Children get an empty mask again (std resets it).
    let mut set = sigset(&FORWARDED);
    // SAFETY: plain libc calls on a valid, initialised sigset.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        // Orphans of steps come to us even when we are not PID 1.
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let known = Arc::new(Known {
        pids: Mutex::new(HashSet::new()),
    });
    {
        let known = Arc::clone(&known);
        std::thread::spawn(move || reap_orphans(&known));
    }

    let _ = std::fs::remove_file(socket);
    let listener = match UnixListener::bind(socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("clnrm agent: bind {}: {e}", socket.display());
            return 70;
        }
    };
    let service_pid = if service.is_empty() {
        None
    } else {
        let mut cmd = Command::new(&service[0]);
        cmd.args(&service[1..]);
        unblock_signals_in_child(&mut cmd);
        match known.spawn(&mut cmd) {
            Ok(mut child) => {
                let pid = child.id() as i32;
                let known = Arc::clone(&known);
                std::thread::spawn(move || {
                    let code = match known.wait(&mut child) {
                        Ok(st) => status_code(st),
                        Err(_) => 70,
                    };
                    std::process::exit(code)
                });
                Some(pid)
            }
            Err(e) => {
                eprintln!(
                    "clnrm agent: cannot run {}: {e}",
                    service[0].to_string_lossy()
                );
                return if e.kind() == io::ErrorKind::NotFound {
                    127
                } else {
                    126
                };
            }
        }
    };
    {
        let known = Arc::clone(&known);
        std::thread::spawn(move || accept_loop(&listener, &known));
    }
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is a valid sigset, `sig` a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        match service_pid {
            // SAFETY: kill(2) on our own child.
            Some(pid) => unsafe {
                libc::kill(pid, sig);
            },
            None if sig == libc::SIGWINCH || sig == libc::SIGUSR1 || sig == libc::SIGUSR2 => {}
            // Keep-alive: a stop request ends the container.
            None => return 128 + sig,
        }
        // Re-arm in case the set was modified by sigwait (it is not, but stay explicit).
        set = sigset(&FORWARDED);
    }
}

/// Children start with no blocked signals: the mask this process blocks for `sigwait` would
/// otherwise be inherited, and a step's `kill -TERM $$` or the forwarded SIGTERM would stay
/// pending forever.
fn unblock_signals_in_child(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls sigemptyset and
    // pthread_sigmask, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
}

fn sigset(sigs: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set; sigaddset with valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Exit code as a shell (and `docker exec`) reports it: 128 + signal for a killed process.
fn status_code(st: ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

/// Reap every child that nobody else waits for. `WNOWAIT` peeks first, so the children this
/// process waits for itself (service, steps) keep their status for their owner.
fn reap_orphans(known: &Known) {
    loop {
        // SAFETY: zeroed siginfo is a valid out buffer for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc != 0 {
            // No children at the moment (ECHILD) or interrupted: orphans appear only after
            // a step ran; look again shortly.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        // SAFETY: waitid filled `info` for a child state change.
        let pid = unsafe { info.si_pid() };
        if known.contains(pid) {
            // Its owner is about to wait for it.
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let mut status = 0;
        // SAFETY: reaping a specific zombie child that nobody else owns.
        unsafe {
            libc::waitpid(pid, &mut status, libc::WNOHANG);
        }
    }
}

/// How long the agent waits for its owner's first connection (clnrm connects right after the
/// container starts; if it died before, nobody ever will, and the container must not run on).
const OWNER_DEADLINE: Duration = Duration::from_secs(60);

fn accept_loop(listener: &UnixListener, known: &Arc<Known>) {
    let owner_seen = Arc::new(AtomicBool::new(false));
    {
        let owner_seen = Arc::clone(&owner_seen);
        std::thread::spawn(move || {
            std::thread::sleep(OWNER_DEADLINE);
            if !owner_seen.load(Ordering::SeqCst) {
                eprintln!("clnrm agent: nobody connected within {OWNER_DEADLINE:?}; exiting");
                std::process::exit(0);
            }
        });
    }
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let owner = !owner_seen.swap(true, Ordering::SeqCst);
        let known = Arc::clone(known);
        std::thread::spawn(move || {
            let r = serve(conn, &known);
            if owner {
                if let Err(e) = r {
                    eprintln!("clnrm agent: {e}");
                }
                // The host side is gone: end the container's processes with us.
                std::process::exit(0);
            }
        });
    }
}

fn serve(mut conn: UnixStream, known: &Known) -> Result<(), ProtocolError> {
    protocol::write_json(
        &mut conn,
        Kind::Hello,
        &Hello {
            version: protocol::VERSION,
            pid: std::process::id(),
        },
    )?;
    let mut reader = conn.try_clone()?;
    while let Some((kind, body)) = protocol::read_frame(&mut reader)? {
        if kind != Kind::Run {
            return Err(ProtocolError::Unexpected(kind));
        }
        let run: Run = protocol::parse(kind, &body)?;
        match run_step(&run, known, &mut conn) {
            Ok(exit) => protocol::write_json(&mut conn, Kind::Exit, &exit)?,
            Err(StepError::Io(e)) => return Err(e.into()),
            Err(StepError::Spawn(message)) => {
                protocol::write_json(&mut conn, Kind::Error, &Failed { message })?
            }
        }
    }
    Ok(())
}

enum StepError {
    /// Writing to the client failed: the connection is gone.
    Io(io::Error),
    /// The step could not start.
    Spawn(String),
}

fn run_step(run: &Run, known: &Known, out: &mut UnixStream) -> Result<Exit, StepError> {
    let Some(program) = run.argv.first() else {
        return Err(StepError::Spawn("empty argv".into()));
    };
    let mut cmd = Command::new(program);
    cmd.args(&run.argv[1..])
        .envs(&run.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout kills the step and everything it started.
        .process_group(0);
    unblock_signals_in_child(&mut cmd);
    if let Some(dir) = &run.workdir {
        cmd.current_dir(dir);
    }
    if let Some(user) = &run.user {
        let (uid, gid) = parse_user(user).map_err(StepError::Spawn)?;
        cmd.uid(uid);
        if let Some(g) = gid {
            cmd.gid(g);
        }
    }
    let started = Instant::now();
    let mut child = match known.spawn(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            return Err(StepError::Spawn(format!("exec {program:?}: {e}")));
        }
    };
    let pid = child.id() as i32;
    let (Some(so), Some(se)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(StepError::Spawn("pipes missing".into()));
    };
    let deadline = started + Duration::from_millis(run.timeout_ms);
    let cap = usize::try_from(run.output_cap).unwrap_or(usize::MAX);
    let mut streams = [
        Stream::new(
            std::fs::File::from(std::os::fd::OwnedFd::from(so)),
            Kind::Stdout,
        ),
        Stream::new(
            std::fs::File::from(std::os::fd::OwnedFd::from(se)),
            Kind::Stderr,
        ),
    ];
    let mut timed_out = false;
    let mut drain_until: Option<Instant> = None;
    while streams.iter().any(|s| s.open) {
        let now = Instant::now();
        if !timed_out && now >= deadline {
            timed_out = true;
            // SAFETY: kill(2) of the step's own process group (pgid == its pid).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            drain_until = Some(now + DRAIN_AFTER_KILL);
        }
        let until = drain_until.unwrap_or(deadline);
        if drain_until.is_some_and(|d| now >= d) {
            break;
        }
        let wait_ms = until.saturating_duration_since(now).as_millis().min(1000) as i32;
        let mut fds: Vec<libc::pollfd> = streams
            .iter()
            .map(|s| libc::pollfd {
                fd: if s.open { s.fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of pollfd for its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms.max(1)) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(StepError::Io(e));
        }
        for (s, p) in streams.iter_mut().zip(&fds) {
            if s.open && p.revents != 0 {
                s.pump(cap, out).map_err(StepError::Io)?;
            }
        }
    }
    if !timed_out && Instant::now() >= deadline {
        timed_out = true;
    }
    if timed_out {
        // SAFETY: as above; again in case the main process outlived the drain.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let status = known.wait(&mut child).map_err(StepError::Io)?;
    let duration_us = started.elapsed().as_micros() as u64;
    let [o, e] = streams;
    Ok(Exit {
        code: (!timed_out).then(|| status_code(status)),
        signal: status.signal(),
        timed_out,
        duration_us,
        stdout_bytes: o.total,
        stderr_bytes: e.total,
    })
}

fn parse_user(user: &str) -> Result<(u32, Option<u32>), String> {
    let bad = || format!("user `{user}` must be numeric `uid` or `uid:gid`");
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid = u.parse().map_err(|_| bad())?;
    let gid = g.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

/// One output pipe of a step: read as it comes, sent in frames up to the cap, counted after.
struct Stream<R> {
    pipe: R,
    kind: Kind,
    open: bool,
    total: u64,
    sent: usize,
}

impl<R: Read + AsRawFd> Stream<R> {
    fn new(pipe: R, kind: Kind) -> Self {
        Stream {
            pipe,
            kind,
            open: true,
            total: 0,
            sent: 0,
        }
    }

    fn fd(&self) -> i32 {
        self.pipe.as_raw_fd()
    }

    fn pump(&mut self, cap: usize, out: &mut UnixStream) -> io::Result<()> {
        let mut buf = [0u8; 64 * 1024];
        match self.pipe.read(&mut buf) {
            Ok(0) => self.open = false,
            Ok(n) => {
                self.total += n as u64;
                let room = cap.saturating_sub(self.sent).min(n);
                if room > 0 {
                    protocol::write_frame(out, self.kind, &buf[..room])?;
                    self.sent += room;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.open = false,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_numeric() {
        assert_eq!(parse_user("1000"), Ok((1000, None)));
        assert_eq!(parse_user("1000:50"), Ok((1000, Some(50))));
        assert!(parse_user("nobody").is_err());
        assert!(parse_user("1:x").is_err());
    }
}

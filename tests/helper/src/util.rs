// SPDX-License-Identifier: GPL-2.0

//! What every check uses: the outcome type and its macros, errno names, file I/O helpers, the
//! data pattern and a watchdog.

use std::fmt::Display;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rustix::fs::{Mode, OFlags, SeekFrom};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions};

/// Why a subcommand stopped early.
#[derive(Debug)]
pub enum Outcome {
    /// A check failed: what was expected and what came.
    Fail(String),
    /// A prerequisite is missing.
    Skip(String),
}

/// The result of a check.
pub type Res<T> = Result<T, Outcome>;

/// Returns from the function with a failure.
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::util::Outcome::Fail(format!($($arg)*)))
    };
}

/// Fails unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::util::fail!($($arg)*);
        }
    };
}

/// Prints a diagnostic line.
macro_rules! diag {
    ($($arg:tt)*) => {
        println!("# {}", format_args!($($arg)*))
    };
}

pub(crate) use {diag, ensure, fail};

/// Prints how a subcommand ended and returns its exit code (KSFT_PASS, _FAIL or _SKIP).
pub fn report(result: Res<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(Outcome::Fail(msg)) => {
            println!("# FAIL: {msg}");
            1
        }
        Err(Outcome::Skip(msg)) => {
            println!("# SKIP: {msg}");
            4
        }
    }
}

/// The symbolic name of an errno ("ENOSPC"), or "errno N" for a number Linux gives no name.
///
/// rustix's `Errno` has no names: its `Debug` and `Display` are `std::io::Error`'s (a message
/// and the number), and musl, which the static helper links, has no `strerrorname_np`. nix's
/// `Errno` is an enum of Linux's errno names whose derived `Debug` is the name (the first of
/// aliases: EAGAIN, not EWOULDBLOCK; EOPNOTSUPP, not ENOTSUP). The helper uses nix for nothing
/// else, built without features.
pub fn errno_name(e: Errno) -> String {
    match nix::errno::Errno::from_raw(e.raw_os_error()) {
        nix::errno::Errno::UnknownErrno => format!("errno {}", e.raw_os_error()),
        name => format!("{name:?}"),
    }
}

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this code.
    Exited(i32),
    /// A signal of this number killed it.
    Killed(i32),
}

impl Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Ended::Exited(code) => write!(f, "exit {code}"),
            // rustix's `Signal` has no name either; its `Debug` shows the string "Signal::BUS".
            Ended::Killed(sig) => match Signal::from_named_raw(sig) {
                Some(signal) => {
                    let shown = format!("{signal:?}");
                    let name = shown.trim_matches('"').trim_start_matches("Signal::");
                    write!(f, "killed by SIG{name}")
                }
                None => write!(f, "killed by signal {sig}"),
            },
        }
    }
}

/// Waits for the child process `pid` to end and says how it did.
pub fn wait_child(pid: Pid) -> Res<Ended> {
    match rustix::process::waitpid(Some(pid), WaitOptions::empty()).ctx("waitpid")? {
        Some((_, status)) => match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => Ok(Ended::Exited(code)),
            (None, Some(sig)) => Ok(Ended::Killed(sig)),
            (None, None) => {
                fail!("waitpid: child {pid:?} neither exited nor was killed: {status:?}")
            }
        },
        None => fail!("waitpid: no status of child {pid:?}"),
    }
}

/// Shows a call's result: its value or its errno's name.
pub fn show<T: Display>(result: &Result<T, Errno>) -> String {
    match result {
        Ok(value) => value.to_string(),
        Err(e) => errno_name(*e),
    }
}

/// Turns a failed call into a failure that says which call it was.
pub trait Ctx<T> {
    /// Fails with "`what`: errno".
    fn ctx(self, what: impl Display) -> Res<T>;
}

impl<T> Ctx<T> for Result<T, Errno> {
    fn ctx(self, what: impl Display) -> Res<T> {
        self.map_err(|e| Outcome::Fail(format!("{what}: {}", errno_name(e))))
    }
}

impl<T> Ctx<T> for std::io::Result<T> {
    fn ctx(self, what: impl Display) -> Res<T> {
        self.map_err(|e| match Errno::from_io_error(&e) {
            Some(errno) => Outcome::Fail(format!("{what}: {}", errno_name(errno))),
            None => Outcome::Fail(format!("{what}: {e}")),
        })
    }
}

/// Opens `path` (close-on-exec), creating a regular file with mode 0600 if asked to.
pub fn open(path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    rustix::fs::open(path, flags | OFlags::CLOEXEC, Mode::RUSR | Mode::WUSR)
}

/// Opens `path` for reading and writing, which never trims the device.
pub fn open_rw(path: &Path) -> Res<OwnedFd> {
    open(path, OFlags::RDWR).ctx(format_args!("open {} O_RDWR", path.display()))
}

/// Trims the device (an O_WRONLY|O_TRUNC open).
pub fn trim(path: &Path) -> Res<()> {
    open(path, OFlags::WRONLY | OFlags::TRUNC).ctx(format_args!(
        "trim: open {} O_WRONLY|O_TRUNC",
        path.display()
    ))?;
    Ok(())
}

/// The size of the file, from an lseek(SEEK_END) on a new descriptor.
pub fn size_of(path: &Path) -> Res<u64> {
    let fd = open(path, OFlags::RDONLY).ctx(format_args!("open {} O_RDONLY", path.display()))?;
    rustix::fs::seek(&fd, SeekFrom::End(0)).ctx("lseek(SEEK_END)")
}

/// Reads up to `len` bytes at `pos`, fewer only at the end of the file.
pub fn read_at(fd: impl AsFd, pos: u64, len: usize) -> Res<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut done = 0;
    while done < len {
        let at = pos + done as u64;
        match rustix::io::pread(&fd, &mut buf[done..], at).ctx(format_args!("pread at {at}"))? {
            0 => break,
            n => done += n,
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// Writes all of `data` at `pos`.
pub fn write_at(fd: impl AsFd, pos: u64, data: &[u8]) -> Res<()> {
    let mut done = 0;
    while done < data.len() {
        let at = pos + done as u64;
        match rustix::io::pwrite(&fd, &data[done..], at).ctx(format_args!("pwrite at {at}"))? {
            0 => fail!("pwrite of {} bytes at {at} returned 0", data.len() - done),
            n => done += n,
        }
    }
    Ok(())
}

/// Writes `data` at `pos` of the model of a file's contents, growing it with zeros as needed.
pub fn model_write(model: &mut Vec<u8>, pos: u64, data: &[u8]) {
    let pos = pos as usize;
    if model.len() < pos + data.len() {
        model.resize(pos + data.len(), 0);
    }
    model[pos..pos + data.len()].copy_from_slice(data);
}

/// Fails unless `got` equals `want`, naming `what` and the first differing file offset
/// (`got[0]` being at file offset `pos`).
pub fn expect_bytes(what: impl Display, got: &[u8], want: &[u8], pos: u64) -> Res<()> {
    if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
        fail!(
            "{what}: byte at offset {}: expected {:#04x}, got {:#04x}",
            pos + i as u64,
            want[i],
            got[i]
        );
    }
    ensure!(
        got.len() == want.len(),
        "{what}: expected {} bytes, got {}",
        want.len(),
        got.len()
    );
    Ok(())
}

/// Reads `want.len()` bytes at `pos` and fails unless they equal `want`.
pub fn expect_file(what: impl Display, fd: impl AsFd, pos: u64, want: &[u8]) -> Res<()> {
    let got = read_at(fd, pos, want.len())?;
    expect_bytes(what, &got, want, pos)
}

/// The size of the pattern's unit, which names the pattern's "page".
pub const PATTERN_PAGE: u64 = 4096;

/// The 32-bit word of the pattern at the 4-byte aligned file offset `pos`: its page index and
/// word index, mixed with `salt`. `pattern_page` recovers the page index.
fn pattern_word(salt: u32, pos: u64) -> u32 {
    let page = (pos / PATTERN_PAGE) as u32;
    let word = (pos % PATTERN_PAGE / 4) as u32;
    ((page << 10) | word) ^ salt
}

/// `len` bytes of the pattern for file offsets from `pos` on: every 4 KiB page of it differs.
pub fn pattern(salt: u32, pos: u64, len: usize) -> Vec<u8> {
    (pos..pos + len as u64)
        .map(|at| pattern_word(salt, at & !3).to_le_bytes()[(at & 3) as usize])
        .collect()
}

/// Which pattern page the 4-byte aligned word `bytes[..4]` came from.
pub fn pattern_page(salt: u32, bytes: &[u8]) -> Option<u64> {
    let word = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    Some(u64::from((word ^ salt) >> 10))
}

/// A thread that ends the process with a failure unless dropped within a time limit: a guard
/// against calls that never return.
pub struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the watchdog: if it is not dropped within `secs` seconds, it prints that `what`
    /// did not finish in time and exits with status 1.
    pub fn start(secs: u64, what: String) -> Self {
        let (stop, wait) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) =
                wait.recv_timeout(Duration::from_secs(secs))
            {
                println!("# FAIL: {what} did not finish within {secs} s");
                std::process::exit(1);
            }
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_errnos() {
        // What nix is here for: rustix shows no name.
        assert!(!format!("{:?} {}", Errno::NOSPC, Errno::NOSPC).contains("ENOSPC"));
        assert_eq!(errno_name(Errno::NOSPC), "ENOSPC");
        assert_eq!(errno_name(Errno::AGAIN), "EAGAIN");
        assert_eq!(errno_name(Errno::OPNOTSUPP), "EOPNOTSUPP");
        assert_eq!(errno_name(Errno::NOTTY), "ENOTTY");
        assert_eq!(errno_name(Errno::from_raw_os_error(4000)), "errno 4000");
    }

    #[test]
    fn names_how_a_child_ended() {
        assert_eq!(Ended::Exited(0).to_string(), "exit 0");
        assert_eq!(Ended::Killed(7).to_string(), "killed by SIGBUS");
        assert_eq!(Ended::Killed(200).to_string(), "killed by signal 200");
    }

    #[test]
    fn pattern_names_its_page() {
        let data = pattern(0x1234, 3 * PATTERN_PAGE - 2, 8);
        assert_eq!(data[2..], pattern(0x1234, 3 * PATTERN_PAGE, 6)[..]);
        assert_eq!(pattern_page(0x1234, &data[2..]), Some(3));
        assert_ne!(pattern(1, 0, 64), pattern(1, PATTERN_PAGE, 64));
    }
}

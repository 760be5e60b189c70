//! An eventfd as one owned type: how one thread wakes another that sleeps in poll(2) or
//! on its io_uring (the workers, the health checker, the VRRP thread). Non-blocking and
//! close-on-exec; the counter is read and written 8 bytes at a time.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::check;

#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: plain syscall with constant arguments.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` was just created and nobody else owns it.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Adds `n` to the counter, waking whoever polls it. Fails only with `WouldBlock`
    /// when the counter is near `u64::MAX`, and the reader is due to wake anyway.
    pub fn write(&self, n: u64) -> io::Result<()> {
        let bytes = n.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to an fd this struct owns.
        let written = unsafe { libc::write(self.0.as_raw_fd(), bytes.as_ptr().cast(), 8) };
        if written < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Takes the counter and resets it to zero; `WouldBlock` when nothing was written
    /// since the last read.
    pub fn read(&self) -> io::Result<u64> {
        let mut bytes = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer from an fd this struct owns.
        let n = unsafe { libc::read(self.0.as_raw_fd(), bytes.as_mut_ptr().cast(), 8) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(u64::from_ne_bytes(bytes))
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_add_up_and_a_read_takes_them_all() {
        let e = EventFd::new().unwrap();
        assert_eq!(
            e.read().unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "nothing written yet"
        );
        e.write(1).unwrap();
        e.write(2).unwrap();
        assert_eq!(e.read().unwrap(), 3);
        assert_eq!(e.read().unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }
}

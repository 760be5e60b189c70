//! A provided-buffer ring (IORING_REGISTER_PBUF_RING): the kernel picks a free buffer
//! when data arrives, so an idle connection with a pending recv holds no memory.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

pub struct BufRing {
    /// Ring of buffer descriptors shared with the kernel (page-aligned mmap).
    ring: *mut BufRingEntry,
    ring_bytes: usize,
    /// Backing storage of all buffers, `count × size` bytes (mmap, populated lazily).
    data: *mut u8,
    data_bytes: usize,
    count: u16,
    size: u32,
    tail: u16,
}

fn map_anon(bytes: usize) -> io::Result<*mut u8> {
    // SAFETY: anonymous private mapping; no file, no fixed address.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.cast())
    }
}

/// Names the buffers' mapping `[anon:ringlb-buffers]` in /proc/PID/smaps: its pages become
/// resident as traffic first touches them (up to the whole pool, then it stays flat), and
/// a reader of smaps (or the soak run) can tell that from the heap. Best effort: kernels
/// without CONFIG_ANON_VMA_NAME refuse it.
fn name_mapping(addr: *mut u8, bytes: usize) {
    const PR_SET_VMA: libc::c_int = 0x53564d41;
    const PR_SET_VMA_ANON_NAME: libc::c_ulong = 0;
    // SAFETY: names a mapping this process owns; the name is a NUL-terminated static.
    unsafe {
        libc::prctl(
            PR_SET_VMA,
            PR_SET_VMA_ANON_NAME,
            addr as libc::c_ulong,
            bytes as libc::c_ulong,
            c"ringlb-buffers".as_ptr() as libc::c_ulong,
        );
    }
}

impl BufRing {
    /// Registers `count` (a power of two) buffers of `size` bytes as buffer group `group`.
    pub fn new(uring: &IoUring, group: u16, count: u16, size: u32) -> io::Result<Self> {
        assert!(
            count.is_power_of_two(),
            "buffer count must be a power of two"
        );
        let ring_bytes = count as usize * std::mem::size_of::<BufRingEntry>();
        let data_bytes = count as usize * size as usize;
        let ring = map_anon(ring_bytes)?.cast::<BufRingEntry>();
        let data = match map_anon(data_bytes) {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: unmapping the mapping made just above.
                unsafe { libc::munmap(ring.cast(), ring_bytes) };
                return Err(e);
            }
        };
        name_mapping(data, data_bytes);
        let mut this = BufRing {
            ring,
            ring_bytes,
            data,
            data_bytes,
            count,
            size,
            tail: 0,
        };
        // SAFETY: the ring memory lives until Drop, which runs after the IoUring owning the
        // registration is dropped (the worker drops its ring first).
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(ring as u64, count, group, 0)?;
        }
        for bid in 0..count {
            this.push(bid);
        }
        this.publish();
        Ok(this)
    }

    pub fn buf_size(&self) -> u32 {
        self.size
    }

    /// Start of buffer `bid`.
    pub fn ptr(&self, bid: u16) -> *mut u8 {
        debug_assert!(bid < self.count);
        // SAFETY: bid < count, so the offset stays inside the data mapping.
        unsafe { self.data.add(bid as usize * self.size as usize) }
    }

    fn push(&mut self, bid: u16) {
        let idx = (self.tail & (self.count - 1)) as usize;
        // SAFETY: idx < count, inside the ring mapping; the kernel only reads entries
        // before the published tail, and this one is past it.
        let entry = unsafe { &mut *self.ring.add(idx) };
        entry.set_addr(self.ptr(bid) as u64);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field sits in the first entry, inside the mapping; the kernel
        // reads it with acquire semantics, so a release store orders the entry writes.
        unsafe {
            let tail = BufRingEntry::tail(self.ring).cast_mut();
            (*(tail as *const AtomicU16)).store(self.tail, Ordering::Release);
        }
    }

    /// Gives buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: both mappings were made in `new` and nothing refers to them any more.
        unsafe {
            libc::munmap(self.data.cast(), self.data_bytes);
            libc::munmap(self.ring.cast(), self.ring_bytes);
        }
    }
}

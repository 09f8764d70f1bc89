//! Bounded capture of a step's output: the first and the last bytes are kept, the middle is
//! counted and dropped, so memory does not depend on how much a step prints (300 MB of
//! stdout costs the same as 3 MB).

use std::collections::VecDeque;

/// Bytes kept from the start of a stream.
pub const CAPTURE_HEAD: usize = 1024 * 1024;
/// Bytes kept from the end of a stream.
pub const CAPTURE_TAIL: usize = 1024 * 1024;

/// One stream being captured.
#[derive(Debug, Clone)]
pub struct Capture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    cut: u64,
}

impl Default for Capture {
    fn default() -> Self {
        Capture::new(CAPTURE_HEAD, CAPTURE_TAIL)
    }
}

impl Capture {
    pub fn new(head_cap: usize, tail_cap: usize) -> Capture {
        Capture {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_cap,
            tail_cap,
            cut: 0,
        }
    }

    pub fn push(&mut self, mut data: &[u8]) {
        if self.head.len() < self.head_cap {
            let n = (self.head_cap - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if data.is_empty() {
            return;
        }
        if data.len() >= self.tail_cap {
            self.cut += (self.tail.len() + data.len() - self.tail_cap) as u64;
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + data.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.cut += overflow as u64;
        self.tail.extend(data);
    }

    /// The kept bytes (head then tail, without a marker) and the number of bytes dropped
    /// between them.
    pub fn finish(self) -> (Vec<u8>, u64) {
        let mut out = self.head;
        out.extend(self.tail);
        (out, self.cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail_and_counts_the_middle() {
        let mut c = Capture::new(4, 3);
        for chunk in [&b"abcdef"[..], b"ghij", b"k"] {
            c.push(chunk);
        }
        assert_eq!(c.finish(), (b"abcdijk".to_vec(), 4));
        let mut c = Capture::new(4, 3);
        c.push(b"abc");
        assert_eq!(c.finish(), (b"abc".to_vec(), 0));
        let mut c = Capture::new(2, 2);
        c.push(b"ab");
        c.push(&[b'x'; 1000]);
        c.push(b"yz");
        assert_eq!(c.finish(), (b"abyz".to_vec(), 1000));
    }

    #[test]
    fn memory_is_bounded_whatever_the_volume() {
        let mut c = Capture::new(16, 16);
        let chunk = vec![b'x'; 8192];
        for _ in 0..1000 {
            c.push(&chunk);
        }
        assert!(c.tail.capacity() < 64 * 1024, "{}", c.tail.capacity());
        let (kept, cut) = c.finish();
        assert_eq!((kept.len(), cut), (32, 8192 * 1000 - 32));
    }
}

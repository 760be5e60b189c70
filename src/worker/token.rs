//! The 64-bit user_data of every io_uring request: which operation it was and which
//! connection slot (with a generation, so a completion for a slot that has since been
//! reused is recognised as stale) or listener it belongs to.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// A reserved single-shot accept; `slot` is the listener index.
    Accept = 1,
    /// Accept back-off timer after fd exhaustion; `slot` is the listener index.
    AcceptBackoff,
    /// Control wake-up (eventfd readable).
    Wake,
    /// Periodic housekeeping timer.
    Tick,
    /// A cancel request; its own completion carries nothing we need.
    Cancel,
    Connect,
    ConnectTimeout,
    Recv,
    Send,
    PollIn,
    PollOut,
    /// A read of the client's first bytes (PROXY header, ClientHello) before routing.
    InspectRecv,
    /// The first write to the server: a PROXY header and the bytes read while inspecting.
    Preface,
    /// The multishot accept of a listener far from the fd budget; `slot` is its index.
    AcceptMulti,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        use Op::*;
        [
            Accept,
            AcceptBackoff,
            Wake,
            Tick,
            Cancel,
            Connect,
            ConnectTimeout,
            Recv,
            Send,
            PollIn,
            PollOut,
            InspectRecv,
            Preface,
            AcceptMulti,
        ]
        .into_iter()
        .find(|op| *op as u8 == v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub op: Op,
    /// Direction of a forwarding op (0 = client → server, 1 = server → client).
    pub dir: u8,
    pub gen: u16,
    pub slot: u32,
}

impl Token {
    pub fn new(op: Op, slot: u32) -> Token {
        Token {
            op,
            dir: 0,
            gen: 0,
            slot,
        }
    }

    pub fn encode(self) -> u64 {
        (self.op as u64) << 56
            | (self.dir as u64) << 48
            | (self.gen as u64) << 32
            | self.slot as u64
    }

    pub fn decode(v: u64) -> Option<Token> {
        Some(Token {
            op: Op::from_u8((v >> 56) as u8)?,
            dir: (v >> 48) as u8,
            gen: (v >> 32) as u16,
            slot: v as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Token {
            op: Op::PollOut,
            dir: 1,
            gen: 0xBEEF,
            slot: 123_456,
        };
        assert_eq!(Token::decode(t.encode()), Some(t));
        assert_eq!(Token::decode(0), None);
    }
}

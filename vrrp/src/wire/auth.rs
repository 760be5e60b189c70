//! VRRPv2 authentication: the type byte and the 8 bytes of data after the addresses.

/// VRRPv2 authentication (RFC 3768 §5.3.6 keeps the field for RFC 2338 compatibility).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Type 0. The data is sent as zeros and ignored on receipt. The only choice for VRRPv3.
    #[default]
    None,
    /// Type 1, the RFC 2338 simple text password (keepalived `auth_type PASS`), zero-padded.
    Password([u8; 8]),
    /// Any other type as received. Type 2 is IP AH, whose adverts sit behind an AH header this
    /// crate does not parse.
    Other { auth_type: u8, data: [u8; 8] },
}

impl Auth {
    /// A password of at most 8 bytes, zero-padded; `None` if longer (keepalived would truncate).
    pub fn password(pass: &[u8]) -> Option<Auth> {
        let mut data = [0; 8];
        data.get_mut(..pass.len())?.copy_from_slice(pass);
        Some(Auth::Password(data))
    }

    /// The auth type field.
    pub const fn auth_type(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Password(_) => 1,
            Auth::Other { auth_type, .. } => *auth_type,
        }
    }

    /// The 8 bytes of authentication data as sent.
    pub const fn data(&self) -> [u8; 8] {
        match self {
            Auth::None => [0; 8],
            Auth::Password(data) | Auth::Other { data, .. } => *data,
        }
    }

    pub(crate) fn from_wire(auth_type: u8, data: &[u8]) -> Auth {
        let mut d = [0; 8];
        if data.len() == d.len() {
            d.copy_from_slice(data);
        }
        match auth_type {
            0 => Auth::None,
            1 => Auth::Password(d),
            auth_type => Auth::Other { auth_type, data: d },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_zero_padded_and_at_most_8_bytes() {
        assert_eq!(Auth::password(b"123456789"), None);
        assert_eq!(Auth::password(b"").unwrap().data(), [0; 8]);
        assert_eq!(Auth::password(b"secret").unwrap().data(), *b"secret\0\0");
        assert_eq!(Auth::password(b"x").unwrap().auth_type(), 1);
    }

    #[test]
    fn from_wire_keeps_unknown_types() {
        assert_eq!(Auth::from_wire(0, b"ignored!"), Auth::None);
        assert_eq!(
            Auth::from_wire(1, b"pw\0\0\0\0\0\0"),
            Auth::password(b"pw").unwrap()
        );
        assert_eq!(
            Auth::from_wire(2, b"abcdefgh"),
            Auth::Other {
                auth_type: 2,
                data: *b"abcdefgh"
            }
        );
        assert_eq!(Auth::from_wire(7, b"short").data(), [0; 8]);
    }
}

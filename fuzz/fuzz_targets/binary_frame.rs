//! A binary WebSocket frame, decoded with `Frame::decode` (what the server does with every
//! binary frame a client sends, and the page and `isolab run --server` with the server's).
//!
//! Checks: decoding never panics; an error says why truthfully (`TooShort` only below the
//! 5-byte header, with the real length; `UnknownKind` only for a first byte other than 1, 2, 3);
//! a frame that decodes re-encodes to exactly the input bytes. The other direction too: any
//! kind, handle and data encode to bytes that decode to the same frame.

#![no_main]

use isolab_shared::protocol::{Frame, FrameError, FrameKind, FRAME_HEADER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Frame::decode(data) {
        Ok(frame) => {
            assert!(data.len() >= FRAME_HEADER);
            assert_eq!(frame.kind as u8, data[0]);
            assert_eq!(frame.handle.to_be_bytes(), data[1..FRAME_HEADER]);
            assert_eq!(frame.data, &data[FRAME_HEADER..]);
            assert_eq!(
                frame.encode(),
                data,
                "re-encoding a decoded frame changed its bytes"
            );
        }
        Err(FrameError::TooShort(n)) => {
            assert!(data.len() < FRAME_HEADER);
            assert_eq!(n, data.len());
        }
        Err(FrameError::UnknownKind(kind)) => {
            assert!(data.len() >= FRAME_HEADER);
            assert_eq!(kind, data[0]);
            assert!(!(1..=3).contains(&kind));
        }
    }

    // Encode then decode: the first byte picks the kind, the next four the handle.
    if let [k, a, b, c, d, rest @ ..] = data {
        let kind = match k % 3 {
            0 => FrameKind::Output,
            1 => FrameKind::Input,
            _ => FrameKind::Stderr,
        };
        let handle = u32::from_be_bytes([*a, *b, *c, *d]);
        let frame = Frame::new(kind, handle, rest);
        let bytes = frame.encode();
        assert_eq!(bytes.len(), FRAME_HEADER + rest.len());
        assert_eq!(Frame::decode(&bytes), Ok(frame));
    }
});

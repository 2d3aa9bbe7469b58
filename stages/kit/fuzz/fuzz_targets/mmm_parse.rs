//! Fuzz the MMM reader: any input must give a motion or a ParseError, never a
//! panic, and the same one from the fast frame scanner and the general parser; a motion that parses must survive canonicalisation, and writing it and
//! reading it back must give the same motion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipe_kit::mmm::{parse, parse_general, to_xml, Channels};

fuzz_target!(|data: &[u8]| {
    let all = Channels { joint_velocity: true, joint_acceleration: true };
    for ch in [Channels::default(), all] {
        let got = parse(data, ch);
        assert_eq!(got, parse_general(data, ch));
        if let Ok(m) = got {
            let _ = pipe_kit::extract::canonicalize(m.clone(), 20.0);
            let mut plain = m.clone();
            plain.other_elements.clear();
            let back = parse(to_xml(&plain).as_bytes(), ch).expect("our own output parses");
            let mut expect = plain;
            if !ch.joint_velocity {
                expect.joint_velocity = None;
            }
            if !ch.joint_acceleration {
                expect.joint_acceleration = None;
            }
            assert_eq!(back.frames(), expect.frames());
            assert_eq!(back.joint_position, expect.joint_position);
            assert_eq!(back.root_position, expect.root_position);
        }
    }
});

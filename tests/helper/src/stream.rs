// SPDX-License-Identifier: GPL-2.0

//! `stream`: a long, seeded, position-dependent byte stream on stdout, or a check of stdin
//! against it, so that `dd` can move large data through the device and any byte that comes back
//! wrong, or from the wrong place, is found (a checksum of a repeated chunk would miss a
//! misplaced chunk).

use std::io::{
    Read,
    Write, //
};

use crate::util::{
    Outcome,
    Res, //
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Bytes in the stream
    #[arg(long)]
    bytes: u64,
    /// The stream's seed
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Read the stream from stdin and compare, instead of writing it
    #[arg(long)]
    check: bool,
}

const BLOCK: usize = 1 << 20;

/// The stream's 8-byte word number `index` (at offset `8 * index`): the index times an odd
/// constant (a bijection, so no two words are alike), mixed with the seed. Cheap, so that the
/// stream is not the slow part under emulation.
fn word(seed: u64, index: u64) -> u64 {
    index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed
}

/// Fills `buf` (a multiple of 8 bytes long but for its end) with the stream from the 8-aligned
/// offset `pos`.
fn fill(seed: u64, pos: u64, buf: &mut [u8]) {
    let first = pos / 8;
    let last = word(seed, first + (buf.len() / 8) as u64).to_le_bytes();
    let mut words = buf.chunks_exact_mut(8);
    for (i, chunk) in (&mut words).enumerate() {
        chunk.copy_from_slice(&word(seed, first + i as u64).to_le_bytes());
    }
    let tail = words.into_remainder();
    tail.copy_from_slice(&last[..tail.len()]);
}

/// The offset of the first byte of `buf` that differs from the stream at the 8-aligned `pos`.
/// Word by word: musl's `memcmp` goes byte by byte, which is slow under emulation.
fn first_difference(seed: u64, pos: u64, buf: &[u8]) -> Option<usize> {
    let first = pos / 8;
    let words = buf.chunks_exact(8);
    let tail = words.remainder();
    let bad = words
        .enumerate()
        .find(|(i, chunk)| {
            u64::from_le_bytes((*chunk).try_into().unwrap_or_default())
                != word(seed, first + *i as u64)
        })
        .map(|(i, _)| i);
    let i = match bad {
        Some(i) => i,
        None => {
            let last = word(seed, first + (buf.len() / 8) as u64).to_le_bytes();
            if *tail == last[..tail.len()] {
                return None;
            }
            buf.len() / 8
        }
    };
    let want = word(seed, first + i as u64).to_le_bytes();
    let chunk = &buf[8 * i..(8 * i + 8).min(buf.len())];
    let j = (0..chunk.len()).find(|&j| chunk[j] != want[j]).unwrap_or(0);
    Some(8 * i + j)
}

/// The stream's byte at offset `pos`.
fn byte_at(seed: u64, pos: u64) -> u8 {
    word(seed, pos / 8).to_le_bytes()[(pos % 8) as usize]
}

/// Runs the `stream` subcommand.
pub fn run(args: &Args) -> Res<()> {
    let mut buf = vec![0u8; BLOCK];
    let mut pos = 0;
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    while pos < args.bytes {
        let len = BLOCK.min((args.bytes - pos) as usize);
        let buf = &mut buf[..len];
        if !args.check {
            fill(args.seed, pos, buf);
            if let Err(e) = stdout.write_all(buf) {
                // stdout is the stream: say why on stderr (usually the reader stopped early).
                eprintln!("# FAIL: writing the stream at {pos}: {e}");
                std::process::exit(1);
            }
        } else {
            stdin.read_exact(buf).map_err(|e| {
                Outcome::Fail(format!(
                    "stream: expected {} bytes, input ended at {pos}: {e}",
                    args.bytes
                ))
            })?;
            if let Some(i) = first_difference(args.seed, pos, buf) {
                let want = byte_at(args.seed, pos + i as u64);
                return Err(Outcome::Fail(format!(
                    "stream: byte {} is {:#04x}, expected {want:#04x}",
                    pos + i as u64,
                    buf[i]
                )));
            }
        }
        pos += len as u64;
    }
    if args.check {
        let extra = stdin.read(&mut buf[..1]).unwrap_or(0);
        if extra != 0 {
            return Err(Outcome::Fail(format!(
                "stream: more than the {} bytes expected",
                args.bytes
            )));
        }
        eprintln!(
            "# {} bytes match the stream (seed {})",
            args.bytes, args.seed
        );
    }
    Ok(())
}

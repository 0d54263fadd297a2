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

/// The 8 bytes of the stream at the 8-aligned offset `pos`: the word's index times an odd
/// constant (a bijection, so no two words are alike), mixed with the seed. Cheap, so that the
/// stream is not the slow part under emulation.
fn word(seed: u64, pos: u64) -> [u8; 8] {
    ((pos >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed).to_le_bytes()
}

/// Fills `buf` with the stream from the 8-aligned offset `pos`.
fn fill(seed: u64, pos: u64, buf: &mut [u8]) {
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let w = word(seed, pos + 8 * i as u64);
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

/// Runs the `stream` subcommand.
pub fn run(args: &Args) -> Res<()> {
    let mut want = vec![0u8; BLOCK];
    let mut got = vec![0u8; BLOCK];
    let mut pos = 0;
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    while pos < args.bytes {
        let len = BLOCK.min((args.bytes - pos) as usize);
        fill(args.seed, pos, &mut want[..len]);
        if !args.check {
            if let Err(e) = stdout.write_all(&want[..len]) {
                // stdout is the stream: say why on stderr (usually the reader stopped early).
                eprintln!("# FAIL: writing the stream at {pos}: {e}");
                std::process::exit(1);
            }
        } else {
            stdin.read_exact(&mut got[..len]).map_err(|e| {
                Outcome::Fail(format!(
                    "stream: expected {} bytes, input ended at {pos}: {e}",
                    args.bytes
                ))
            })?;
            if got[..len] != want[..len] {
                let i = (0..len).find(|&i| got[i] != want[i]).unwrap_or(0);
                return Err(Outcome::Fail(format!(
                    "stream: byte {} is {:#04x}, expected {:#04x}",
                    pos + i as u64,
                    got[i],
                    want[i]
                )));
            }
        }
        pos += len as u64;
    }
    if args.check {
        let extra = stdin.read(&mut got[..1]).unwrap_or(0);
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

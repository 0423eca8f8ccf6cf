//! Renders one image and writes it as a PNG.
//!
//! ```text
//! cargo run --release -p taskline-mandelbrot --example render -- [VARIANT|PEER] [SIZE] [OUT.png]
//! ```
//! Defaults: `pool-columns`, 2048, `mandelbrot.png`. Names: `serial`,
//! `task-per-pixel`, `task-per-column`, `pool-pixels`, `pool-columns`, `rayon`,
//! `thread-scope`.

use std::process::ExitCode;
use std::time::Instant;

use taskline_mandelbrot::{Peer, Variant, run, run_peer};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "pool-columns".to_owned());
    let size = args.next().unwrap_or_else(|| "2048".to_owned());
    let out = args.next().unwrap_or_else(|| "mandelbrot.png".to_owned());
    let Ok(size) = size.parse::<u32>() else {
        eprintln!("render: SIZE {size:?} is not a number");
        return ExitCode::FAILURE;
    };
    let start = Instant::now();
    let image = match (name.parse::<Variant>(), name.parse::<Peer>()) {
        (Ok(v), _) => run(v, size, size, 0),
        (_, Ok(p)) => run_peer(p, size, size, 0),
        (Err(e), Err(_)) => {
            eprintln!("render: {e} (or a peer: rayon, thread-scope)");
            return ExitCode::FAILURE;
        }
    };
    let elapsed = start.elapsed();
    let result = image.map_err(|e| e.to_string()).and_then(|image| {
        image.save_png(&out).map_err(|e| format!("{out}: {e}"))?;
        Ok(image.checksum())
    });
    match result {
        Ok(sum) => {
            println!("{name} {size}x{size} in {elapsed:.2?}, checksum {sum:#018x}, wrote {out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("render: {e}");
            ExitCode::FAILURE
        }
    }
}

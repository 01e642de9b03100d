//! `firefly-gen`: rewrites every file generated from the route table (see
//! `firefly_api::generate`). `--check` writes nothing and fails if any file is stale.

use firefly_api::generate;
use firefly_api::routes::ROUTES;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("firefly-gen: unknown argument {other:?}\nusage: firefly-gen [--check]");
            return ExitCode::from(2);
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let outputs = match generate::files(ROUTES) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("firefly-gen: the route table is not valid: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stale = 0;
    for output in &outputs {
        let path = root.join(&output.path);
        let current = std::fs::read_to_string(&path).ok();
        let text = match generate::apply(output, current.as_deref()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("firefly-gen: {e}");
                return ExitCode::FAILURE;
            }
        };
        if current.as_deref() == Some(text.as_str()) {
            continue;
        }
        stale += 1;
        if check {
            eprintln!("firefly-gen: {} is stale", output.path);
        } else if let Err(e) = std::fs::write(&path, text) {
            eprintln!("firefly-gen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {}", output.path);
        }
    }
    // Route manifests of routes no longer in the table.
    let wanted: Vec<&str> = outputs.iter().map(|o| o.path.as_str()).collect();
    if let Ok(dir) = std::fs::read_dir(root.join("routes")) {
        for entry in dir.flatten() {
            let rel = format!("routes/{}", entry.file_name().to_string_lossy());
            if rel.ends_with(".json") && !wanted.contains(&rel.as_str()) {
                stale += 1;
                if check {
                    eprintln!("firefly-gen: {rel} belongs to no route");
                } else if std::fs::remove_file(entry.path()).is_ok() {
                    println!("removed {rel}");
                }
            }
        }
    }
    if check && stale > 0 {
        eprintln!(
            "firefly-gen: {stale} file(s) stale: run `{}`",
            generate::COMMAND
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

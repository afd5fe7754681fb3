//! Push of one new commit to a 10,000-object repository: capi-manage's in-process push vs
//! `git push`, in the same run, over the same servers (a local bare repository, and
//! `git http-backend` behind the test HTTP server). Prints medians and ratios.
//!
//! `cargo bench --bench git_push` (needs git: `scripts/prereqs/git.sh`).

#[path = "../tests/support/git_server.rs"]
mod git_server;

use std::path::Path;
use std::time::{Duration, Instant};

use capi_manage::git::{self, PushOptions};
use capi_manage::observe::Silent;
use git_server::{HttpServer, git, git_command};
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 10;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn new_commit(work: &Path, round: usize) {
    std::fs::write(
        work.join(format!("dir{:03}/file000.txt", round % 100)),
        format!("round {round}\n"),
    )
    .unwrap();
    git(work, &["commit", "-qam", &format!("round {round}")]);
}

fn git_push(work: &Path, url: &str) -> Duration {
    let started = Instant::now();
    let out = git_command(work, &["push", "-q", url, "main"])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "git push: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let work = git_server::work_repo(tmp.path(), "work");
    git_server::fill_large(&work, 100, 99);
    let root = tmp.path().join("srv");
    std::fs::create_dir(&root).unwrap();
    for name in [
        "ours-file.git",
        "git-file.git",
        "ours-http.git",
        "git-http.git",
    ] {
        git_server::bare_repo(&root, name);
    }
    let server = HttpServer::start(&root, None);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ours = |url: &str| {
        let options = PushOptions::new(url, "main");
        let started = Instant::now();
        let outcome = runtime
            .block_on(git::push(
                &work,
                &options,
                &Silent,
                &CancellationToken::new(),
            ))
            .unwrap();
        (started.elapsed(), outcome)
    };
    let targets = [
        (
            "file",
            format!("file://{}", root.join("ours-file.git").display()),
            format!("file://{}", root.join("git-file.git").display()),
        ),
        (
            "http",
            server.url("ours-http.git"),
            server.url("git-http.git"),
        ),
    ];
    // The initial, full pushes (not measured).
    for (_, ours_url, git_url) in &targets {
        let (_, first) = ours(ours_url);
        assert_eq!(first.objects, 10_002);
        git_push(&work, git_url);
    }
    // Each round: one new commit, pushed by both to their own remotes on each transport.
    let mut times = vec![(Vec::new(), Vec::new(), 0u64); targets.len()];
    for round in 0..ROUNDS {
        new_commit(&work, round);
        for ((_, ours_url, git_url), (ours_times, git_times, pack_bytes)) in
            targets.iter().zip(times.iter_mut())
        {
            let (elapsed, outcome) = ours(ours_url);
            assert_eq!(outcome.objects, 4);
            *pack_bytes = outcome.pack_bytes;
            ours_times.push(elapsed);
            git_times.push(git_push(&work, git_url));
        }
    }
    let results: Vec<_> = targets
        .iter()
        .zip(times)
        .map(|((kind, _, _), (o, g, bytes))| (*kind, median(o), median(g), bytes))
        .collect();
    println!("push of one new commit to a 10,000-object repository, median of {ROUNDS}:");
    for (kind, ours, theirs, pack_bytes) in results {
        println!(
            "  {kind:>4}: capi-manage {:>7.1} ms ({pack_bytes} byte pack), git push {:>7.1} ms, git/capi-manage = {:.2}",
            ours.as_secs_f64() * 1e3,
            theirs.as_secs_f64() * 1e3,
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}

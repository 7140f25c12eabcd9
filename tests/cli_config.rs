//! The `tmdbsync` binary on configuration that cannot work (exit code 4 and a message that names
//! the fix, in sentences), on secrets a server echoes back (never printed), and `tmdbsync status`,
//! which never writes: it works on a read replica and refuses empty, foreign and unmigrated
//! databases.

mod support;

use std::process::Command;

use support::fake_http::{Behaviour, FakeHttp};
use support::{TestDb, output, start_sim, stderr};
use tmdbsync::store::Store;

const KEY: &str = "sekrit-cli-key-777";
const UNREACHABLE_DB: &str = "postgres:///x?host=/nonexistent-socket-dir";

/// `tmdbsync ARGS` with the TMDb API key [`KEY`] in its environment.
fn tmdbsync(args: &[&str]) -> Command {
    let mut c = support::tmdbsync(args);
    c.env("TMDB_API_KEY", KEY);
    c
}

/// The URL of another database on the same server.
fn db_url(db: &TestDb, name: &str) -> String {
    db.url.replacen("/postgres?", &format!("/{name}?"), 1)
}

/// Runs and checks: exit code `code`, a last line mentioning every `needles`, and sentences
/// (no Rust `Some(…)`, no Postgres source line).
async fn expect_exit(cmd: Command, code: i32, needles: &[&str]) -> String {
    let out = output(cmd).await;
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{text}");
    let last = text.trim().lines().last().unwrap_or_default().to_string();
    eprintln!("exit {code}: {last}");
    for n in needles {
        assert!(last.contains(n), "{n:?} missing from: {last}");
    }
    assert!(
        !text.contains("Some(") && !text.contains(" at line "),
        "{text}"
    );
    assert!(!text.contains(KEY), "{text}");
    last
}

/// Runs `;`-separated statements one by one (CREATE DATABASE refuses a transaction block).
async fn exec(store: &Store, sql: &str) {
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(store.pool())
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_and_timeouts_that_cannot_work_exit_4_before_anything_runs() {
    let run = |extra: &[&str]| {
        let mut c = tmdbsync(&["run", "--database-url", UNREACHABLE_DB]);
        c.args(extra);
        c
    };
    let cases: [(&[&str], &[&str]); 8] = [
        (
            &["--tmdb-url", "not a url"],
            &["--tmdb-url", "is not a URL", "https://"],
        ),
        (
            &["--tmdb-url", "ftp://files.example/3"],
            &["ftp://", "http:// or https://"],
        ),
        (
            &["--export-url", "file:///tmp/exports"],
            &["--export-url", "file://"],
        ),
        (&["--tmdb-url", "http://"], &["--tmdb-url"]),
        (
            &[
                "--omdb-url",
                "gopher://omdb.example/",
                "--omdb-api-key",
                "k",
            ],
            &["--omdb-url", "gopher://"],
        ),
        (
            &["--timeout-secs", "0"],
            &["--timeout-secs is 0", "at least 1"],
        ),
        (
            &["--connect-timeout-secs", "0"],
            &["--connect-timeout-secs"],
        ),
        (
            &["--export-idle-timeout-secs", "0"],
            &["--export-idle-timeout-secs"],
        ),
    ];
    for (args, needles) in cases {
        expect_exit(run(args), 4, needles).await;
    }
    // A URL's credentials are not echoed back in the complaint.
    let last = expect_exit(
        run(&["--tmdb-url", "ftp://user:hunter2@files.example/3"]),
        4,
        &["ftp://"],
    )
    .await;
    assert!(!last.contains("hunter2"), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_credentials_privileges_and_an_api_root_without_3_exit_4_naming_the_fix() {
    let db = TestDb::start();
    let store = Store::connect(&db.url, 2).await.unwrap();
    // Password logins for one role; everyone else keeps trust.
    std::fs::write(
        db.socket_dir().join("data/pg_hba.conf"),
        "local all pwuser scram-sha-256\nlocal all all trust\n",
    )
    .unwrap();
    exec(
        &store,
        "CREATE ROLE pwuser LOGIN PASSWORD 'right'; CREATE ROLE nocreate LOGIN;
         CREATE DATABASE fresh; SELECT pg_reload_conf();",
    )
    .await;

    let wrong_password = format!("{}&user=pwuser&password=wrong", db_url(&db, "postgres"))
        .replace("&user=postgres", "");
    let last = expect_exit(
        tmdbsync(&["migrate", "--database-url", &wrong_password]),
        4,
        &["password", "check the user and password"],
    )
    .await;
    assert!(!last.contains("wrong"), "{last}");
    expect_exit(
        tmdbsync(&["migrate", "--database-url", &db_url(&db, "no_such_db")]),
        4,
        &["no_such_db", "check the database name"],
    )
    .await;
    let no_create = db_url(&db, "fresh").replace("user=postgres", "user=nocreate");
    expect_exit(
        tmdbsync(&["migrate", "--database-url", &no_create]),
        4,
        &["permission denied", "grant it CREATE"],
    )
    .await;

    // TMDb's API root ends in /3; the simulator's root without it has no /configuration.
    let sim = start_sim(50, 9).await;
    expect_exit(
        tmdbsync(&[
            "run",
            "--database-url",
            &db.url,
            "--tmdb-url",
            &sim.base_url(),
            "--export-url",
            &sim.export_url(),
        ]),
        4,
        &["--tmdb-url", "ends in /3"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_echoing_the_request_never_gets_the_key_printed() {
    let db = TestDb::start();
    let proxy = FakeHttp::start(Behaviour::Echo502 {
        configuration_ok: false,
    })
    .await;
    let last = expect_exit(
        tmdbsync(&[
            "run",
            "--database-url",
            &db.url,
            "--tmdb-url",
            &format!("{}/3", proxy.url()),
            "--export-url",
            &proxy.url(),
        ]),
        1,
        &["HTTP 502", "api_key=<redacted>"],
    )
    .await;
    assert!(proxy.connections() >= 3, "the check was retried: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_never_writes_works_on_a_replica_and_refuses_empty_foreign_and_old_databases() {
    let db = TestDb::start();
    let admin = Store::connect(&db.url, 2).await.unwrap();
    exec(
        &admin,
        "CREATE DATABASE empty; CREATE DATABASE foreign_app; CREATE DATABASE old; CREATE DATABASE replica;",
    )
    .await;
    let status = |name: &str| tmdbsync(&["status", "--database-url", &db_url(&db, name)]);
    let tables = |name: &'static str| {
        let url = db_url(&db, name);
        async move {
            let s = Store::connect(&url, 1).await.unwrap();
            let t: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            )
            .fetch_all(s.pool())
            .await
            .unwrap();
            t
        }
    };

    // Empty: refused, and still empty.
    expect_exit(
        status("empty"),
        4,
        &["not a tmdbsync database", "tmdbsync migrate"],
    )
    .await;
    assert!(tables("empty").await.is_empty(), "status created tables");

    // Another sqlx application's database: refused, untouched.
    let foreign = Store::connect(&db_url(&db, "foreign_app"), 1)
        .await
        .unwrap();
    exec(
        &foreign,
        "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL,
             installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL,
             checksum bytea NOT NULL, execution_time bigint NOT NULL);
         INSERT INTO _sqlx_migrations VALUES (1, 'orders', now(), true, '\\x00', 1);
         CREATE TABLE orders (id int); CREATE TABLE sync_runs (id int);",
    )
    .await;
    let before = tables("foreign_app").await;
    expect_exit(status("foreign_app"), 4, &["not a tmdbsync database"]).await;
    assert_eq!(tables("foreign_app").await, before);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(foreign.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1, "no migration was recorded");

    // Migrated by an older version (its last migration missing): refused with the fix.
    let old = Store::connect(&db_url(&db, "old"), 1).await.unwrap();
    old.migrate().await.unwrap();
    exec(&old, "DELETE FROM _sqlx_migrations WHERE version = 3").await;
    expect_exit(
        status("old"),
        4,
        &["needs migrating", "0003_run_requests", "tmdbsync migrate"],
    )
    .await;

    // A read replica (every transaction read-only): status works.
    let replica = Store::connect(&db_url(&db, "replica"), 1).await.unwrap();
    replica.migrate().await.unwrap();
    exec(
        &admin,
        "ALTER DATABASE replica SET default_transaction_read_only = on",
    )
    .await;
    let out = output(status("replica")).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("movies"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // `run` against the replica is a configuration error, not a retry.
    expect_exit(
        tmdbsync(&[
            "run",
            "--database-url",
            &db_url(&db, "replica"),
            "--tmdb-url",
            "http://127.0.0.1:9/3",
        ]),
        4,
        &["read-only"],
    )
    .await;
}

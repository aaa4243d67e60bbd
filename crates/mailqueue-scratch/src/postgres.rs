//! A fresh PostgreSQL database per test, dropped afterwards.
//!
//! The server is the one at `MAILQUEUE_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`).

use sqlx::{Connection, PgConnection};

pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

fn admin_url() -> String {
    std::env::var("MAILQUEUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// The URL of database `name` on the server of `url`.
fn with_database(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("MAILQUEUE_TEST_POSTGRES_URL is a URL");
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

impl TestDatabase {
    pub async fn create() -> Self {
        Self::create_with("").await
    }

    /// A database created with extra options, e.g. `TABLESPACE small`.
    pub async fn create_with(options: &str) -> Self {
        let admin_url = admin_url();
        let name = format!("mqtest_{}", crate::unique_suffix());
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must run for the tests ({admin_url}): {e}"));
        sqlx::query(&format!("CREATE DATABASE {name} {options}"))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        Self {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }

    /// A connection to the server's maintenance database, for statements
    /// about the server itself (tablespaces, settings).
    pub async fn admin(&self) -> PgConnection {
        PgConnection::connect(&self.admin_url)
            .await
            .expect("connect to the PostgreSQL server")
    }

    /// A connection to this database.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

/// A tablespace at a directory the server can write, dropped afterwards
/// (declare it before the databases in it, so that they are dropped first).
pub struct TestTablespace {
    pub name: String,
    admin_url: String,
}

impl TestTablespace {
    pub async fn create(location: &std::path::Path) -> Self {
        let admin_url = admin_url();
        let name = format!("mqspace_{}", crate::unique_suffix());
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .expect("connect to the PostgreSQL server");
        sqlx::query(&format!(
            "CREATE TABLESPACE {name} LOCATION '{}'",
            location.display()
        ))
        .execute(&mut conn)
        .await
        .expect("create a tablespace");
        Self { name, admin_url }
    }
}

impl Drop for TestTablespace {
    fn drop(&mut self) {
        run_on_server(
            &self.admin_url,
            format!("DROP TABLESPACE IF EXISTS {}", self.name),
        );
    }
}

/// Runs one statement from a destructor (outside any async context).
fn run_on_server(admin_url: &str, statement: String) {
    let admin = admin_url.to_string();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&statement).execute(&mut conn).await;
                }
            });
        }
    })
    .join();
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Test runs leave nothing behind.
        run_on_server(
            &self.admin_url,
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
    }
}

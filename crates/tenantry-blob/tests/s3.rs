//! The adapter against a real S3 server (`s3s-fs`, which checks SigV4 signatures), started on a
//! free port for each test. `scripts/test.sh` installs it and sets `TENANTRY_S3FS_BIN`; outside CI
//! the tests skip without it, under `CI=true` they fail.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tenantry_app::BlobStore;
use tenantry_blob::{BlobConfig, ObjectBlobStore, S3Config};

struct S3Server {
    child: Child,
    root: std::path::PathBuf,
    port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

const ACCESS: &str = "tenantry-test";
const SECRET: &str = "tenantry-test-secret";

fn start() -> Option<S3Server> {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let root = std::env::temp_dir().join(format!("tenantry-s3-{}-{port}", std::process::id()));
    std::fs::create_dir_all(root.join("docs")).unwrap();
    start_on(port, root)
}

/// `s3s-fs` on `port`, serving `root` (which may hold a bucket from before).
fn start_on(port: u16, root: std::path::PathBuf) -> Option<S3Server> {
    let bin = match std::env::var("TENANTRY_S3FS_BIN") {
        Ok(b) if !b.is_empty() => b,
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "TENANTRY_S3FS_BIN is not set: CI must test against a real S3 server (scripts/test.sh installs s3s-fs)"
            )
        }
        _ => {
            eprintln!("skipping: TENANTRY_S3FS_BIN is not set (scripts/test.sh installs s3s-fs)");
            return None;
        }
    };
    let mut child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", ACCESS, "--secret-key", SECRET])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start s3s-fs");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(S3Server { child, root, port });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("s3s-fs did not start on port {port}");
}

fn config(server: &S3Server, secret: &str) -> BlobConfig {
    BlobConfig::S3(S3Config {
        bucket: "docs".into(),
        endpoint: Some(format!("http://127.0.0.1:{}", server.port)),
        region: "us-east-1".into(),
        access_key_id: ACCESS.into(),
        secret_access_key: secret.into(),
        allow_http: true,
    })
}

#[tokio::test]
async fn objects_round_trip_through_s3() {
    let Some(server) = start() else { return };
    let store = ObjectBlobStore::open(&config(&server, SECRET)).unwrap();
    let a = "tenants/acme/documents/d-01.json";
    let b = "tenants/beta/documents/d-02.json";
    store.put(a, b"{\"a\":1}".to_vec()).await.unwrap();
    store.put(b, b"{\"b\":2}".to_vec()).await.unwrap();
    assert_eq!(store.get(a).await.unwrap().as_deref(), Some(&b"{\"a\":1}"[..]));
    assert_eq!(store.list("tenants/acme/documents/").await.unwrap(), vec![a.to_owned()]);
    assert_eq!(store.list("tenants/beta/documents/").await.unwrap(), vec![b.to_owned()]);
    store.delete(a).await.unwrap();
    store.delete(a).await.unwrap();
    assert_eq!(store.get(a).await.unwrap(), None);
    assert!(store.put("tenants/acme/../beta/documents/x.json", vec![1]).await.is_err());
    // the server checks signatures: a wrong secret is refused
    let forged = ObjectBlobStore::open(&config(&server, "wrong-secret")).unwrap();
    assert!(forged.get(b).await.is_err());
    assert!(forged.put("tenants/x/documents/d-1.json", vec![1]).await.is_err());
}

/// The data plane with its raw documents on S3: ingest writes the object under the tenant's
/// prefix, delete removes it, another tenant's prefix stays untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_plane_keeps_raw_documents_in_s3() {
    use tenantry_app::{App, AppConfig, LocalEmbedder, Store};
    use tenantry_domain::{NewDocument, NewTenant, TenantId, TierName};
    let Some(server) = start() else { return };
    let blobs = Arc::new(ObjectBlobStore::open(&config(&server, SECRET)).unwrap());
    let store: Arc<dyn Store> = Arc::new(tenantry_store_sqlite::SqliteStore::open_temporary().await.unwrap());
    let clock = Arc::new(tenantry_app::SystemClock);
    let app =
        App::build(AppConfig::local(store, clock, Arc::new(LocalEmbedder::new(32)), blobs.clone())).await.unwrap();
    let admin = app.operator("s3-test");
    let (plane, registry) = (app.data, app.registry);
    for id in ["acme", "beta"] {
        let t = TenantId::parse(id).unwrap();
        registry.create_tenant(&admin, NewTenant::minimal(t, id, TierName::parse("silver").unwrap())).await.unwrap();
    }
    let acme = admin.act_in(TenantId::parse("acme").unwrap());
    let beta = admin.act_in(TenantId::parse("beta").unwrap());
    let doc = |t: &str| NewDocument::new("t", t.to_owned(), &serde_json::Value::Null, None).unwrap();
    let a = plane.ingest(&acme, vec![doc("acme secret plan")]).await.unwrap().remove(0);
    plane.ingest(&beta, vec![doc("beta secret plan")]).await.unwrap();
    assert_eq!(plane.document_text(&acme, &a.id).await.unwrap(), "acme secret plan");
    assert!(server.root.join("docs").join(&a.object_key).exists(), "the object is in the bucket");
    assert!(plane.document_text(&beta, &a.id).await.is_err(), "beta cannot read acme's object");
    plane.delete_document(&acme, &a.id).await.unwrap();
    assert!(blobs.list("tenants/acme/documents/").await.unwrap().is_empty());
    assert_eq!(blobs.list("tenants/beta/documents/").await.unwrap().len(), 1);
}

/// The services on an embedded store with `blobs` for objects, and tenant `acme`'s scope.
async fn app_with_acme(blobs: Arc<dyn BlobStore>) -> (tenantry_app::App, tenantry_app::TenantScope) {
    use tenantry_app::{App, AppConfig, LocalEmbedder, Store};
    use tenantry_domain::{NewTenant, TenantId, TierName};
    let store: Arc<dyn Store> = Arc::new(tenantry_store_sqlite::SqliteStore::open_temporary().await.unwrap());
    let local = AppConfig::local(store, Arc::new(tenantry_app::SystemClock), Arc::new(LocalEmbedder::new(32)), blobs);
    let app = App::build(local).await.unwrap();
    let admin = app.operator("s3-test");
    let acme = TenantId::parse("acme").unwrap();
    let new = NewTenant::minimal(acme.clone(), "Acme", TierName::parse("silver").unwrap());
    app.registry.create_tenant(&admin, new).await.unwrap();
    let scope = admin.act_in(acme);
    (app, scope)
}

/// S3 goes away while the service runs: an ingest is refused with 503 `store_unavailable`, no
/// document row is written and nothing of the batch is in the bucket; once S3 is back, the same
/// service ingests again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_while_s3_is_down_writes_nothing_and_recovers() {
    use tenantry_app::ErrorCode;
    use tenantry_domain::NewDocument;
    let Some(mut server) = start() else { return };
    let blobs = Arc::new(ObjectBlobStore::open(&config(&server, SECRET)).unwrap());
    let (app, scope) = app_with_acme(blobs.clone()).await;
    let docs = |n: usize| -> Vec<NewDocument> {
        (0..n)
            .map(|i| {
                NewDocument::new("t", format!("document {i} of the batch"), &serde_json::Value::Null, None).unwrap()
            })
            .collect()
    };
    app.data.ingest(&scope, docs(1)).await.expect("ingest with S3 up");

    let _ = server.child.kill();
    let _ = server.child.wait();
    let refused = app.data.ingest(&scope, docs(3)).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::StoreUnavailable, "{refused}");
    assert_eq!(app.data.list_documents(&scope, None, 100).await.unwrap().len(), 1, "no row of the refused batch");

    let (port, root) = (server.port, server.root.clone());
    std::mem::forget(server); // its Drop would remove the bucket the new server serves
    let server = start_on(port, root).expect("s3s-fs again");
    assert_eq!(blobs.list("tenants/acme/documents/").await.unwrap().len(), 1, "no object of the refused batch");
    app.data.ingest(&scope, docs(2)).await.expect("ingest once S3 is back, same service");
    assert_eq!(app.data.list_documents(&scope, None, 100).await.unwrap().len(), 3);
    assert_eq!(blobs.list("tenants/acme/documents/").await.unwrap().len(), 3);
    drop(server);
}

/// The real S3 adapter, with the server killed right after the `after`-th object of a batch is
/// written: the outage hits in the middle of the batch, at a known point (every read and write
/// still goes to the real server).
struct KillAfter {
    inner: ObjectBlobStore,
    after: usize,
    puts: std::sync::atomic::AtomicUsize,
    server: std::sync::Mutex<Option<S3Server>>,
}

#[async_trait::async_trait]
impl BlobStore for KillAfter {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), tenantry_app::StoreError> {
        self.inner.put(key, bytes).await?;
        if self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == self.after
            && let Some(server) = self.server.lock().unwrap().as_mut()
        {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, tenantry_app::StoreError> {
        self.inner.get(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), tenantry_app::StoreError> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, tenantry_app::StoreError> {
        self.inner.list(prefix).await
    }
}

/// S3 dies in the middle of a batch (after two of its four objects are written): the batch is
/// refused and writes no row; the two objects that could not be removed are recorded, and the
/// sweep removes them once S3 is back — nothing of the batch is left in the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_left_by_a_batch_s3_dropped_are_swept_when_it_returns() {
    use tenantry_domain::NewDocument;
    let Some(server) = start() else { return };
    let (port, root) = (server.port, server.root.clone());
    let real = ObjectBlobStore::open(&config(&server, SECRET)).unwrap();
    let blobs = Arc::new(KillAfter {
        inner: real,
        after: 2,
        puts: Default::default(),
        server: std::sync::Mutex::new(Some(server)),
    });
    let (app, scope) = app_with_acme(blobs.clone()).await;
    let docs: Vec<NewDocument> = (0..4)
        .map(|i| NewDocument::new("t", format!("document {i}"), &serde_json::Value::Null, None).unwrap())
        .collect();
    let refused = app.data.ingest(&scope, docs).await.unwrap_err();
    assert_eq!(refused.code(), tenantry_app::ErrorCode::StoreUnavailable, "{refused}");
    assert!(app.data.list_documents(&scope, None, 100).await.unwrap().is_empty(), "no row of the batch");

    // the killed server's bucket still holds the two objects; S3 comes back on it
    let dead = blobs.server.lock().unwrap().take().unwrap();
    std::mem::forget(dead); // its Drop would remove the bucket the new server serves
    let server = start_on(port, root).expect("s3s-fs again");
    assert_eq!(blobs.list("tenants/acme/documents/").await.unwrap().len(), 2, "left behind by the batch");
    assert_eq!(app.data.sweep_orphans(100).await.unwrap(), 2, "both were recorded");
    assert!(blobs.list("tenants/acme/documents/").await.unwrap().is_empty(), "nothing of the batch is left");
    assert_eq!(app.data.sweep_orphans(100).await.unwrap(), 0, "and forgotten once removed");
    drop(server);
}

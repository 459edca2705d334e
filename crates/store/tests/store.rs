//! The embedded store against a real SQLite file in a temp dir.
#![allow(clippy::unwrap_used)]

use serde::{Deserialize, Serialize};
use weir_model::{Error, Kind, Resource};
use weir_store::{ListQuery, Store, TxnExt};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Thing {
    id: String,
    owner: String,
    name: String,
}

impl Resource for Thing {
    const KIND: Kind = Kind::Vpc;
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> &str {
        &self.owner
    }
    fn search_text(&self) -> String {
        format!("{} {}", self.name, self.id).to_lowercase()
    }
}

fn thing(id: &str, owner: &str, name: &str) -> Thing {
    Thing {
        id: id.into(),
        owner: owner.into(),
        name: name.into(),
    }
}

#[tokio::test]
async fn revisions_feed_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.revision(), 0);
    let (_, r1) = store.write(|tx| tx.put(&thing("vpc-1", "a", "Alpha"))).await.unwrap();
    let (_, r2) = store.write(|tx| tx.put(&thing("vpc-2", "b", "beta_x"))).await.unwrap();
    assert_eq!((r1, r2), (1, 2));
    // A write that changes nothing does not bump the revision.
    let (_, r) = store.write(|tx| tx.get::<Thing>("vpc-1").map(|_| ())).await.unwrap();
    assert_eq!(r, 2);
    // A failed write rolls back entirely.
    let err = store
        .write(|tx| {
            tx.put(&thing("vpc-3", "a", "gamma"))?;
            Err::<(), _>(Error::invalid("x", "no"))
        })
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("x"));
    assert!(store.read(|tx| tx.get::<Thing>("vpc-3")).await.unwrap().is_none());
    assert_eq!(store.revision(), 2);

    let changes = store.changes_since(1, 100).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].revision, changes[0].id.as_str(), changes[0].op.as_str()),
        (2, "vpc-2", "put")
    );

    // Search is a case-insensitive substring; `_` is literal, not a wildcard.
    let page = store
        .read(|tx| {
            let mut q = ListQuery::new(Kind::Vpc);
            q.search = Some("A_X".into());
            tx.list::<Thing>(&q)
        })
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].id, "vpc-2");
    let page = store
        .read(|tx| {
            let mut q = ListQuery::new(Kind::Vpc);
            q.owners = Some(vec!["a".into()]);
            tx.list::<Thing>(&q)
        })
        .await
        .unwrap();
    assert_eq!(page.items, vec![thing("vpc-1", "a", "Alpha")]);
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.revision(), 2);
    let (_, r3) = store.write(|tx| tx.delete::<Thing>("vpc-1")).await.unwrap();
    assert_eq!(r3, 3);
}

#[tokio::test]
async fn claims_are_exclusive_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.write(move |tx| {
                let me = format!("h{i}");
                match tx.claim("port/lb-1/tcp/80", &me)? {
                    None => Ok(true),
                    Some(_) => Ok(false),
                }
            })
            .await
            .unwrap()
            .0
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    let holder = store.read(|tx| tx.holder("port/lb-1/tcp/80")).await.unwrap();
    assert!(holder.unwrap().starts_with('h'));
}

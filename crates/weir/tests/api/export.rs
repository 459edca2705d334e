//! The `.xlsx` export opens as a valid workbook with one row per visible LB.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use serde_json::json;

use crate::kit::{self, Server};

#[tokio::test]
async fn export_is_a_valid_workbook_of_visible_lbs() {
    let s = Server::start().await;
    let (_, a) = s.account("alice").await;
    let (_, b) = s.account("bob").await;
    let na = kit::net(&s, &a, "10.1.0.0/16", "10.1.1.0/24", "10.1.1.10").await;
    let nb = kit::net(&s, &b, "10.1.0.0/16", "10.1.1.0/24", "10.1.1.10").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(kit::lb(&s, &a, &na, &format!("alice-{i}")).await);
    }
    s.post(
        &a,
        &format!("/v1/load-balancers/{}/vservers", ids[0]),
        json!({"protocol": "tcp", "port": 5432}),
    )
    .await
    .ok(201);
    kit::lb(&s, &b, &nb, "bob-0").await;

    let resp = s
        .http
        .get(format!("{}/v1/load-balancers/export.xlsx", s.base))
        .bearer_auth(&a)
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let bytes = resp.bytes().await.expect("body").to_vec();
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("a valid xlsx workbook");
    let range = wb.worksheet_range("Load balancers").expect("sheet");
    let rows: Vec<Vec<Data>> = range.rows().map(|r| r.to_vec()).collect();
    assert_eq!(rows.len(), 1 + 3, "header + one row per visible LB");
    assert_eq!(rows[0][0], Data::String("Name".into()));
    assert_eq!(rows[0][1], Data::String("ID".into()));
    let mut names: Vec<String> = rows[1..].iter().map(|r| r[0].to_string()).collect();
    names.sort();
    assert_eq!(names, vec!["alice-0", "alice-1", "alice-2"]);
    let exported_ids: Vec<String> = rows[1..].iter().map(|r| r[1].to_string()).collect();
    for id in &ids {
        assert!(exported_ids.contains(id), "{id} missing");
    }
    let first = rows[1..].iter().find(|r| r[1].to_string() == ids[0]).expect("row");
    assert_eq!(first[6], Data::Float(1.0), "VServer count");
    assert_eq!(first[2].to_string(), "10.1.1.1", "address");
    assert_eq!(first[9].to_string(), "hourly");

    // `search=` narrows the export like the list.
    let resp = s
        .http
        .get(format!("{}/v1/load-balancers/export.xlsx?search=alice-2", s.base))
        .bearer_auth(&a)
        .send()
        .await
        .expect("export");
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(resp.bytes().await.expect("body").to_vec())).expect("xlsx");
    let range = wb.worksheet_range("Load balancers").expect("sheet");
    assert_eq!(range.rows().count(), 2);
}

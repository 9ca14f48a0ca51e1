//! hello-module: the template a new module author copies. It shows routes with path
//! parameters, JSON in and out, the host's key-value store, reading the registry, and
//! what happens when a handler panics (the host answers 500 and keeps serving).

use plugin_api::{Host, Module, Request, Response, Route, export_module};
use serde_json::json;

#[derive(Debug)]
pub struct Hello {
    host: Host,
    greeting: String,
}

impl Module for Hello {
    const NAME: &'static str = "hello";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Greets, counts, lists services: a template for module authors";

    fn routes() -> Vec<Route> {
        vec![
            Route::get("/greet/{name}", "Greet someone (counts greetings in the module's store)"),
            Route::get("/count", "How many greetings so far"),
            Route::post("/echo", "Echo a JSON body"),
            Route::get("/services", "The host's services, read through host services"),
            Route::get("/panic", "Panics on purpose: the host answers 500 and keeps serving"),
            Route::get("/ping", "The smallest answer (benchmark twin of GET /api/ping)"),
            Route::get("/sleep/{ms}", "Answers after ms milliseconds (to see the host's handler timeout)"),
            Route::get("/events/next", "The next host event of ?kind= (waits up to 10 s)"),
        ]
    }

    fn init(host: Host, config: serde_json::Value) -> Result<Self, String> {
        let greeting = config["greeting"].as_str().unwrap_or("hello").to_string();
        host.info(&format!("hello-module {} ready", Self::VERSION));
        Ok(Self { host, greeting })
    }

    async fn handle(&self, req: Request) -> Response {
        match req.route.as_str() {
            "/greet/{name}" => {
                let name = req.param("name").unwrap_or("stranger").to_string();
                let count = self.count() + 1;
                if let Err(e) = self.host.kv_set("greetings", &count.to_string()) {
                    return Response::error(500, "store", &e);
                }
                // The module's tracing is forwarded into the host's log.
                plugin_api::tracing::info!(count, "greeted {name}");
                Response::json(&json!({ "message": format!("{}, {name}!", self.greeting), "count": count }))
            }
            "/count" => Response::json(&json!({ "count": self.count() })),
            "/echo" => match req.json::<serde_json::Value>() {
                Ok(body) => Response::json(&json!({ "echo": body })),
                Err(bad_request) => bad_request,
            },
            "/services" => Response::json(&self.host.services()),
            "/panic" => panic!("asked to panic"),
            "/ping" => Response::json(&json!({ "pong": true })),
            "/events/next" => {
                let kind = req.query_param("kind");
                let wait = async {
                    loop {
                        let event = self.host.next_event().await;
                        if kind.as_deref().is_none_or(|k| event["kind"] == k) {
                            return event;
                        }
                    }
                };
                match plugin_api::tokio::time::timeout(std::time::Duration::from_secs(10), wait).await {
                    Ok(event) => Response::json(&event),
                    Err(_) => Response::error(504, "timeout", "no such event within 10 s"),
                }
            }
            "/sleep/{ms}" => {
                let ms: u64 = req.param("ms").and_then(|v| v.parse().ok()).unwrap_or(0);
                // The module's own runtime drives the timer.
                plugin_api::tokio::time::sleep(std::time::Duration::from_millis(ms.min(60_000))).await;
                Response::json(&json!({ "slept_ms": ms }))
            }
            _ => Response::not_found(),
        }
    }
}

impl Hello {
    fn count(&self) -> u64 {
        self.host.kv_get("greetings").ok().flatten().and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

export_module!(Hello);

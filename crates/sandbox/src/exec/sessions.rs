//! The sessions of one sandbox: each one's token, agent settings and the app behind it (a
//! shell over a task's in-memory files, or a port forward), and the connection state the data
//! channel attaches to.
//!
//! Receives new sessions from the API handlers ([`super::api`]); hands on entries to the data
//! channel ([`super::channel`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cortado_ssm_session::{AgentOptions, Handle, Transport};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::minishell::Fs;
use crate::world::Task;

/// What runs behind a session.
#[derive(Clone)]
pub(super) enum App {
    Shell {
        command: String,
        env: Vec<(String, String)>,
        hostname: String,
        fs: Arc<Mutex<Fs>>,
    },
    Port {
        host: String,
        port: u16,
    },
}

pub(super) struct Entry {
    pub(super) token: String,
    pub(super) agent: AgentOptions,
    pub(super) app: App,
    pub(super) attach: Option<mpsc::Sender<Transport>>,
    pub(super) handle: Option<Handle>,
    pub(super) ended: bool,
    /// The `dropAfter` fault has cut a connection of this session already.
    pub(super) dropped: bool,
}

/// The sessions of one sandbox, and each task's in-memory files.
pub struct Sessions {
    pub(super) base: String,
    pub(super) entries: HashMap<String, Entry>,
    pub(super) files: HashMap<String, Arc<Mutex<Fs>>>,
}

impl Sessions {
    /// `base` is the WebSocket origin of the sandbox (`ws://127.0.0.1:PORT`).
    pub fn new(base: String) -> Sessions {
        Sessions {
            base,
            entries: HashMap::new(),
            files: HashMap::new(),
        }
    }

    pub(super) fn create(&mut self, id: String, agent: AgentOptions, app: App) -> Value {
        let token = cortado_ssm_session::random_hex(32);
        let url = self.url(&id);
        self.entries.insert(
            id.clone(),
            Entry {
                token: token.clone(),
                agent,
                app,
                attach: None,
                handle: None,
                ended: false,
                dropped: false,
            },
        );
        json!({"sessionId": id, "streamUrl": url, "tokenValue": token})
    }

    pub(super) fn url(&self, id: &str) -> String {
        format!("{}/v1/data-channel/{id}?role=publish_subscribe", self.base)
    }

    pub(super) fn fs_of(&mut self, task: &Task, container: &str) -> Arc<Mutex<Fs>> {
        self.files
            .entry(task.id.clone())
            .or_insert_with(|| Arc::new(Mutex::new(Fs::for_task(&task.id, container))))
            .clone()
    }
}

//! One command on one SSH exec channel: send the command line, feed stdin then EOF, collect
//! stdout, stderr and the exit status. For sudo it also watches for the success marker and,
//! when a password is given, answers sudo's prompt before the command's own stdin goes out.

use russh::client::Msg;
use russh::{Channel, ChannelMsg, Sig};

use crate::transport::shell::SudoMarkers;

/// What a command produced, as raw bytes.
#[derive(Debug, Default)]
pub struct RawOutput {
    pub rc: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Why a command did not produce a [`RawOutput`].
#[derive(Debug)]
pub enum ChannelError {
    /// The connection failed (or the server refused the channel): the host is unreachable.
    Connection(String),
    /// sudo did not run the command; its stderr and exit status.
    SudoRefused { stderr: String, rc: i32 },
}

/// The sudo side of a command: the markers in its command line and the password, if any.
pub struct SudoDialog<'a> {
    pub markers: &'a SudoMarkers,
    pub password: Option<&'a str>,
}

/// Runs `command` (already the full exec string) on a fresh session `channel`.
pub async fn run(
    channel: Channel<Msg>,
    command: &str,
    stdin: &[u8],
    sudo: Option<SudoDialog<'_>>,
) -> Result<RawOutput, ChannelError> {
    let (mut reader, writer) = channel.split();
    writer
        .exec(true, command.as_bytes().to_vec())
        .await
        .map_err(|e| ChannelError::Connection(format!("exec request: {e}")))?;

    // stdin waits for sudo when sudo may read a password from the same stream.
    let hold_stdin = matches!(
        &sudo,
        Some(SudoDialog {
            password: Some(_),
            ..
        })
    );
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let mut release_tx = Some(release_tx);
    if !hold_stdin {
        if let Some(tx) = release_tx.take() {
            let _ = tx.send(());
        }
    }

    let send_stdin = async {
        if release_rx.await.is_err() {
            return Ok(());
        }
        if !stdin.is_empty() {
            writer.data_bytes(stdin.to_vec()).await?;
        }
        writer.eof().await
    };

    let collect = async {
        let mut out = RawOutput::default();
        let mut exit: Option<i32> = None;
        let mut started = sudo.is_none();
        let mut prompts_answered = 0usize;
        let mut wrong_password = false;
        while let Some(msg) = reader.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    super::stats::received(data.len());
                    out.stdout.extend_from_slice(&data);
                    if !started {
                        if let Some(dialog) = &sudo {
                            let line = format!("{}\n", dialog.markers.success);
                            if let Some(pos) = find(&out.stdout, line.as_bytes()) {
                                out.stdout.drain(..pos + line.len());
                                started = true;
                                if let Some(tx) = release_tx.take() {
                                    let _ = tx.send(());
                                }
                            }
                        }
                    }
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    super::stats::received(data.len());
                    out.stderr.extend_from_slice(&data);
                    if let Some(SudoDialog {
                        markers,
                        password: Some(password),
                    }) = &sudo
                    {
                        if started {
                            continue;
                        }
                        let prompts = count(&out.stderr, markers.prompt.as_bytes());
                        if prompts > prompts_answered {
                            if prompts_answered > 0 {
                                // Asked again: the password was wrong. Stop here rather
                                // than let sudo wait for more attempts.
                                wrong_password = true;
                                let _ = writer.eof().await;
                                let _ = writer.close().await;
                                break;
                            }
                            prompts_answered = prompts;
                            writer
                                .data_bytes(format!("{password}\n").into_bytes())
                                .await
                                .map_err(|e| {
                                    ChannelError::Connection(format!("send sudo password: {e}"))
                                })?;
                        }
                    }
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    exit = Some(i32::try_from(exit_status).unwrap_or(i32::MAX));
                }
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    exit = Some(-signal_number(&signal_name));
                    out.stderr.extend_from_slice(
                        format!("\nkilled by signal {signal_name:?}\n").as_bytes(),
                    );
                }
                ChannelMsg::Failure if exit.is_none() && out.stdout.is_empty() => {
                    return Err(ChannelError::Connection(
                        "the server refused to run the command".to_string(),
                    ));
                }
                _ => {}
            }
        }
        // Whatever happens, let the stdin side finish.
        if let Some(tx) = release_tx.take() {
            drop(tx);
        }
        if let Some(dialog) = &sudo {
            let text = strip_all(&out.stderr, dialog.markers.prompt.as_bytes());
            out.stderr = text;
            if wrong_password {
                return Err(ChannelError::SudoRefused {
                    stderr: "sudo: incorrect password".to_string(),
                    rc: 1,
                });
            }
            if !started {
                return Err(ChannelError::SudoRefused {
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    rc: exit.unwrap_or(-1),
                });
            }
        }
        match exit {
            Some(rc) => {
                out.rc = rc;
                Ok(out)
            }
            None => Err(ChannelError::Connection(
                "the connection closed before the command finished".to_string(),
            )),
        }
    };

    // The output decides when the command is over: a command that exits without reading
    // all of its stdin leaves the sender waiting for window space that never comes, so
    // the sender is dropped then (that is not an error).
    tokio::pin!(send_stdin);
    tokio::pin!(collect);
    let mut sending = true;
    loop {
        tokio::select! {
            sent = &mut send_stdin, if sending => {
                sending = false;
                if let Err(e) = sent {
                    tracing::debug!("stdin not fully sent: {e}");
                }
            }
            collected = &mut collect => return collected,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = haystack;
    while let Some(pos) = find(rest, needle) {
        n += 1;
        rest = &rest[pos + needle.len()..];
    }
    n
}

fn strip_all(haystack: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(pos) = find(rest, needle) {
        out.extend_from_slice(&rest[..pos]);
        rest = &rest[pos + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn signal_number(sig: &Sig) -> i32 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_search_helpers() {
        assert_eq!(find(b"abcabc", b"ca"), Some(2));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(count(b"P: x P: ", b"P: "), 2);
        assert_eq!(strip_all(b"P: hello P: ", b"P: "), b"hello ".to_vec());
    }
}

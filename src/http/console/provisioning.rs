//! A connector's Provisioning tab: the attribute mapping table, the Linchpin fields (those
//! with source "IdP" or XML offered as targets), and, where the rules are not written in
//! usersync.toml, the editor: add a field, preview on a chosen user, save (validated like the
//! file, versioned, audited, in force without a restart).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{error_page, notice, or_dash, page, tabs, value};
use super::session::Console;
use crate::http::admin::auth::Acting;
use crate::http::admin::mapping::{self, MappingPreview, NewRules, PreviewRequest};
use crate::http::admin::problem::AdminError;
use crate::http::state::AppState;
use crate::scim::schema::ResourceKind;

/// `GET /connectors/{connector}/provisioning`.
pub async fn tab(
    State(state): State<AppState>,
    console: Console,
    Path(connector): Path<String>,
) -> Response {
    render(&state, &console, &connector, Editor::default()).await
}

/// What the editor shows besides the table.
#[derive(Default)]
struct Editor {
    /// Rules being edited (not saved), when they differ from those in force.
    rules: Option<String>,
    /// The user the preview was asked for.
    user: String,
    preview: Option<MappingPreview>,
    notice: Option<(&'static str, String)>,
}

/// The editor's form.
#[derive(Debug, Deserialize)]
pub struct EditorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rules: String,
    /// `preview`, `save` or `add`.
    #[serde(default)]
    op: String,
    /// The userName or SCIM id to preview on.
    #[serde(default)]
    user: String,
    /// `add`: the Linchpin field (its label) to fill.
    #[serde(default)]
    add_field: String,
    /// `add`: the SCIM path to fill it from, or `manager` (`manager.manager`, … for the lines
    /// above).
    #[serde(default)]
    add_source: String,
}

/// `POST /connectors/{connector}/provisioning`: add a field, preview, or save.
pub async fn submit(
    State(state): State<AppState>,
    console: Console,
    Path(connector): Path<String>,
    Form(form): Form<EditorForm>,
) -> Response {
    if let Some(r) = console.csrf_refusal(&form.csrf) {
        return r;
    }
    let mut editor = Editor {
        rules: Some(form.rules.clone()),
        user: form.user.clone(),
        ..Editor::default()
    };
    match form.op.as_str() {
        "add" => {
            if form.add_field.trim().is_empty() || form.add_source.trim().is_empty() {
                editor.notice = Some((
                    "error",
                    "Choose a Linchpin field and give a source.".to_owned(),
                ));
            } else {
                editor.rules = Some(add_field(
                    &form.rules,
                    form.add_field.trim(),
                    form.add_source.trim(),
                ));
                editor.notice = Some((
                    "ok",
                    "Field added to the rules below: preview it, then save.".to_owned(),
                ));
            }
        }
        "preview" => match user_id(&state, &connector, &form.user).await {
            Ok(Some(id)) => {
                let req = PreviewRequest {
                    rules: Some(form.rules.clone()),
                    user_id: id,
                };
                match mapping::preview_rules(
                    State(state.clone()),
                    console.caller.clone(),
                    Path(connector.clone()),
                    Json(req),
                )
                .await
                {
                    Ok(Json(p)) => editor.preview = Some(p),
                    Err(AdminError::BadRequest(why)) => editor.notice = Some(("error", why)),
                    Err(e) => return error_page(&console, e),
                }
            }
            Ok(None) => {
                editor.notice = Some((
                    "error",
                    format!("No user {:?} in this connector.", form.user),
                ))
            }
            Err(e) => return error_page(&console, e),
        },
        "save" => {
            let acting = match Acting::check(
                &state,
                console.caller.clone(),
                "console: save mapping",
                &connector,
            )
            .await
            {
                Ok(a) => a,
                Err(e) => return error_page(&console, e),
            };
            match mapping::save_mapping(
                State(state.clone()),
                acting,
                Path(connector.clone()),
                Json(NewRules {
                    rules: form.rules.clone(),
                }),
            )
            .await
            {
                Ok(Json(t)) => {
                    editor.rules = None;
                    editor.notice = Some((
                        "ok",
                        format!(
                            "Saved as version {}: in force now; every user of the connector is queued for delivery.",
                            t.version.unwrap_or_default()
                        ),
                    ));
                }
                Err(AdminError::BadRequest(why)) => {
                    editor.notice = Some(("error", format!("Not saved: {why}")))
                }
                Err(e) => return error_page(&console, e),
            }
        }
        other => editor.notice = Some(("error", format!("Unknown operation {other:?}."))),
    }
    render(&state, &console, &connector, editor).await
}

/// The SCIM id of the user named by a userName or an id.
async fn user_id(
    state: &AppState,
    connector: &str,
    user: &str,
) -> Result<Option<String>, AdminError> {
    let user = user.trim();
    if user.is_empty() {
        return Ok(None);
    }
    if let Some(u) = state
        .store
        .find_by_name(connector, ResourceKind::User, user)
        .await?
    {
        return Ok(Some(u.id));
    }
    let key = crate::store::ResourceKey::user(connector, user);
    Ok(state.store.get_resource(&key).await?.map(|r| r.id))
}

/// The rules with a `[[fields]]` table filling the Linchpin field `label` from `source`.
fn add_field(rules: &str, label: &str, source: &str) -> String {
    let slug: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_matches('_')
        .to_owned();
    let name = if slug.is_empty() || !slug.starts_with(|c: char| c.is_ascii_alphabetic()) {
        format!("field_{slug}")
    } else {
        slug
    };
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    // `manager`, `manager.manager`, …: a line of managers, not a SCIM path.
    let line = crate::mapping::rules::Computed::try_from(source.trim().to_lowercase())
        .ok()
        .filter(|c| c.manager_level().is_some());
    let from = if let Some(line) = line {
        format!("from = {}", quote(&String::from(line)))
    } else {
        format!("source = {}", quote(source))
    };
    let mut out = rules.trim_end().to_owned();
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(&format!(
        "[[fields]]\nname = {}\nlinchpin_field = {}\n{from}\n",
        quote(&name),
        quote(label)
    ));
    out
}

async fn render(state: &AppState, console: &Console, connector: &str, editor: Editor) -> Response {
    let table = match mapping::mapping_table(
        State(state.clone()),
        console.caller.clone(),
        Path(connector.to_owned()),
    )
    .await
    {
        Ok(Json(t)) => t,
        Err(e) => return error_page(console, e),
    };
    let fields = mapping::linchpin_fields(
        State(state.clone()),
        console.caller.clone(),
        Path(connector.to_owned()),
    )
    .await;
    let rules = editor.rules.clone().unwrap_or_else(|| table.rules.clone());
    let body = html! {
        (tabs(connector, "provisioning"))
        @if let Some((kind, text)) = &editor.notice { (notice(kind, text)) }
        p {
            @match table.defined_in.as_str() {
                "config" => { "These rules are written in usersync.toml ([connectors." (connector) ".mapping]): they are read-only here; change them in the file." }
                "edited" => { "Edited rules, version " (table.version.unwrap_or_default()) "." }
                _ => { "The built-in rules: nothing is written yet." }
            }
            " Manager references name: " (table.manager_refers_to) "."
        }
        h2 { "Attribute mapping" }
        div.scroll { table #mapping {
            thead { tr {
                th scope="col" { "Target field" } th scope="col" { "Linchpin field or XML element" } th scope="col" { "← Source" }
                th scope="col" { "Transforms" } th scope="col" { "No value" }
            } }
            tbody { @for r in &table.rows { tr class=[r.builtin.then_some("builtin")] {
                th.nowrap scope="row" { code { (r.target) } }
                td { (or_dash(r.linchpin_field.as_deref().or(r.xml.as_deref()))) }
                td {
                    @if let Some(c) = &r.computed { "computed: " (c) } @else { (r.source.join(", then ")) }
                    @if let Some(d) = &r.default { br; small { "default " (d) } }
                }
                td { @for t in &r.transforms { code { (super::layout::transform(t)) } " " } }
                td.nowrap { (r.on_missing) @if r.builtin { br; span.muted { "built-in" } } }
            } } }
        } }
        h2 { "Linchpin fields" }
        @match &fields {
            Ok(Json(f)) => {
                p.muted { "Read from " (f.base_url) ". Fields whose source is IdP or XML can be mapped." }
                div.scroll { table #linchpin-fields {
                    thead { tr { th scope="col" { "Label" } th scope="col" { "Key" } th scope="col" { "Source" } th scope="col" { "Filled by" } } }
                    tbody { @for lf in &f.fields { tr class=[lf.mappable.then_some("mappable")] {
                        th scope="row" { (lf.label) } td { code { (lf.key) } }
                        td { (lf.source) @if lf.source == "IDP" { " " span.badge { "IdP" } } }
                        td { @if let Some(m) = &lf.mapped_by { code { (m) } } @else if lf.mappable { span.muted { "not mapped" } } @else { span.muted { "—" } } }
                    } } }
                } }
            }
            Err(e) => { (notice("warn", &format!("Linchpin's fields could not be read: {e}"))) }
        }
        @if table.editable {
            h2 { "Edit the rules" }
            form.editor method="post" action=(format!("/connectors/{connector}/provisioning")) {
                input type="hidden" name="csrf" value=(console.csrf);
                @if let Ok(Json(f)) = &fields {
                    fieldset.add {
                        legend { "Map a Linchpin field" }
                        label for="add_field" { "Linchpin field" }
                        select #add_field name="add_field" {
                            option value="" { "choose…" }
                            @for lf in f.fields.iter().filter(|lf| lf.mappable) {
                                option value=(lf.label) { (lf.label) " (" (lf.source) ")" }
                            }
                        }
                        label for="add_source" { "From (a SCIM path, or manager, manager.manager, …)" }
                        input #add_source name="add_source" placeholder="e.g. urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
                        button type="submit" name="op" value="add" { "Add to the rules" }
                    }
                }
                label for="rules" { "Rules (TOML, as under [connectors." (connector) ".mapping] in usersync.toml; docs/mapping.md)" }
                textarea #rules name="rules" rows="14" spellcheck="false" { (rules) }
                div.row {
                    label for="user" { "Preview on user (userName or id)" }
                    input #user name="user" value=(editor.user);
                    button type="submit" name="op" value="preview" { "Preview" }
                    @if console.can_act() { button.primary type="submit" name="op" value="save" { "Save" } }
                }
            }
            @if let Some(p) = &editor.preview { (preview_panel(p)) }
        }
    };
    page(
        console,
        &format!("Connector {connector}: provisioning"),
        body,
    )
    .into_response()
}

fn preview_panel(p: &MappingPreview) -> Markup {
    html! {
        section #preview.panel aria-labelledby="preview-title" {
            h2 #preview-title { "Preview (not saved)" }
            dl.facts {
                @if let Some(identity) = p.identity.as_object() {
                    @for (k, v) in identity {
                        dt { (k) } dd { @if let Some(e) = v["error"].as_str() { span.bad { (e) } } @else { (value(&v["value"])) } }
                    }
                }
                dt { "manager" } dd { (p.manager) }
            }
            @if let Some(fields) = p.fields.as_array() {
                div.scroll { table {
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Source values" } th scope="col" { "Value" } th scope="col" { "State" } } }
                    tbody { @for f in fields { tr {
                        th scope="row" { (f["name"].as_str().unwrap_or_default()) }
                        td { (value(&f["source"])) } td { (value(&f["value"])) } td { (f["state"].as_str().unwrap_or_default()) }
                    } } }
                } }
            } @else if let Some(why) = p.fields["left_out"].as_str() { (notice("error", why)) }
            @if let Some(el) = &p.feed_element { h3 { "Feed element" } pre #feed-element { (el) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::add_field;
    use crate::mapping::MappingSettings;

    #[test]
    fn a_mapped_field_takes_a_scim_path_or_a_line_of_managers() {
        let rules = add_field("", "Second-line manager", "Manager.Manager");
        assert!(rules.contains("from = \"manager.manager\""), "{rules}");
        let rules = add_field(
            &rules,
            "Cost centre",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
        );
        assert!(rules.contains("source = \"urn:"), "{rules}");
        let parsed = MappingSettings::from_toml(&rules).expect("the rules parse");
        assert_eq!(parsed.fields.len(), 2);
    }
}

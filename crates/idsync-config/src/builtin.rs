//! The built-in script library: idsync's own versions of the default scripts that IDM installs
//! and that projects name by path (IDM's default `managed.json` names
//! `ui/onDelete-user-cleanup.js`, its samples name `compensate.js`), compiled into the binary, and
//! the names of IDM's other default scripts, each refused with the reason. The library is looked
//! up after the project folder and its `script/` folder (docs/idm-samples.md#the-built-in-script-library).
//! Written for idsync from what IDM documents the scripts do; none is a copy of IDM's.

/// The scripts idsync provides: (the name as IDM's projects write it, the source).
pub const BUILTIN_SCRIPTS: [(&str, &str); 12] = [
    (
        "ui/onDelete-user-cleanup.js",
        include_str!("../builtin-scripts/ui/onDelete-user-cleanup.js"),
    ),
    // The misspelt name of IDM's older managed.json, the same script.
    (
        "ui/onDetele-user-cleanup.js",
        include_str!("../builtin-scripts/ui/onDelete-user-cleanup.js"),
    ),
    (
        "ui/onCreate-user-set-default-fields.js",
        include_str!("../builtin-scripts/ui/onCreate-user-set-default-fields.js"),
    ),
    (
        "roles/update-users-of-role.js",
        include_str!("../builtin-scripts/roles/update-users-of-role.js"),
    ),
    (
        "roles/onDelete-roles.js",
        include_str!("../builtin-scripts/roles/onDelete-roles.js"),
    ),
    (
        "roles/postOperation-roles.js",
        include_str!("../builtin-scripts/roles/postOperation-roles.js"),
    ),
    (
        "compensate.js",
        include_str!("../builtin-scripts/compensate.js"),
    ),
    // The modules and property scripts of IDM's default managed.json (docs/scripts.md#require-modules).
    (
        "ui/onCreateUser.js",
        include_str!("../builtin-scripts/ui/onCreateUser.js"),
    ),
    (
        "ui/onUpdateUser.js",
        include_str!("../builtin-scripts/ui/onUpdateUser.js"),
    ),
    (
        "roles/effectiveRoles.js",
        include_str!("../builtin-scripts/roles/effectiveRoles.js"),
    ),
    (
        "roles/effectiveAssignments.js",
        include_str!("../builtin-scripts/roles/effectiveAssignments.js"),
    ),
    (
        "roles/conditionalRoles.js",
        include_str!("../builtin-scripts/roles/conditionalRoles.js"),
    ),
];

const ROLES: &str = "it belongs to the part of IDM's role-based provisioning that idsync does \
                     not have (assignments applied to targets by the mappings, scheduled temporal \
                     grants); idsync computes effective roles, effective assignments and \
                     conditional grants with its built-in roles/ modules: map roles in the \
                     mappings";
const UI: &str = "it serves IDM's administration and self-service user interface, which idsync \
                  does not have";
const WORKFLOW: &str = "it drives IDM's workflow engine, which idsync does not have";
const AUTH: &str = "it belongs to IDM's authentication and authorization modules; idsync's access \
                    control is configured in conf/authentication.json";

/// IDM's default scripts that idsync refuses: (a name, or a folder ending in `/`; the reason).
pub const REFUSED_SCRIPTS: [(&str, &str); 16] = [
    (
        "ui/correlateTreeToQueryFilter.js",
        "it turns the \"expressionTree\" of its script object into a correlation query, which \
         idsync does itself: give the script object an \"expressionTree\"",
    ),
    ("roles/", ROLES),
    ("ui/", UI),
    ("workflow/", WORKFLOW),
    ("auth/", AUTH),
    ("router-authz.js", AUTH),
    (
        "policy.js",
        "it is IDM's policy service (password and field policies), which idsync does not have",
    ),
    (
        "policyFilter.js",
        "it is IDM's policy service (password and field policies), which idsync does not have",
    ),
    (
        "linkedView.js",
        "it builds IDM's linked views (an object with its linked objects), which idsync does not serve",
    ),
    (
        "crypto.js",
        "it uses IDM's encryption service; idsync keeps secrets with &{NAME} substitution",
    ),
    (
        "managedPatchHelper.js",
        "it is a helper of IDM's own scripts, not a script a project runs",
    ),
    (
        "patchHelper.js",
        "it is a helper of IDM's own scripts, not a script a project runs",
    ),
    (
        "audit/",
        "it formats or purges IDM's audit records, which idsync keeps and purges itself",
    ),
    (
        "info/",
        "it answers IDM's info endpoints, which idsync serves itself",
    ),
    (
        "init.groovy",
        "it is a Groovy script, and idsync runs JavaScript only",
    ),
    (
        "roles/onRecon.groovy",
        "it is a Groovy script, and idsync runs JavaScript only",
    ),
];

/// A script `file` as the library knows it: the name with IDM's optional leading `script/`.
fn library_name(file: &str) -> &str {
    let f = file.trim_start_matches("./");
    f.strip_prefix("script/").unwrap_or(f)
}

/// The built-in source of `file`, if idsync provides one.
pub fn builtin_script(file: &str) -> Option<&'static str> {
    let name = library_name(file);
    BUILTIN_SCRIPTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
}

/// Why idsync refuses IDM's default script `file`, if it is one.
pub fn refused_script(file: &str) -> Option<&'static str> {
    let name = library_name(file);
    if builtin_script(name).is_some() {
        return None;
    }
    // The longest match wins (`roles/onRecon.groovy` over `roles/`).
    REFUSED_SCRIPTS
        .iter()
        .filter(|(n, _)| {
            if n.ends_with('/') {
                name.starts_with(n)
            } else {
                name == *n
            }
        })
        .max_by_key(|(n, _)| n.len())
        .map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_answers_by_name_with_or_without_script_prefix() {
        assert!(builtin_script("compensate.js").is_some());
        assert!(builtin_script("script/compensate.js").is_some());
        assert!(builtin_script("ui/onDelete-user-cleanup.js").is_some());
        assert!(builtin_script("roles/onDelete-roles.js").is_some());
        assert!(builtin_script("roles/effectiveRoles.js").is_some());
        assert!(builtin_script("roles/onSync-roles.js").is_none());
        assert!(builtin_script("ui/onCreate-user-set-default-fields.js").is_some());
        assert_eq!(refused_script("roles/update-users-of-role.js"), None);
        assert_eq!(refused_script("roles/onDelete-roles.js"), None);
        assert_eq!(refused_script("compensate.js"), None);
        assert_eq!(refused_script("roles/effectiveRoles.js"), None);
        assert_eq!(refused_script("roles/onSync-roles.js"), Some(ROLES));
        assert_eq!(
            refused_script("script/workflow/triggerWorkflowFromSync.js"),
            Some(WORKFLOW)
        );
        assert!(
            refused_script("roles/onRecon.groovy").is_some_and(|w| w.contains("Groovy")),
            "the longest match wins"
        );
        assert_eq!(refused_script("my/own.js"), None);
    }
}

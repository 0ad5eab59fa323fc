// idsync's built-in roles/update-users-of-role.js
// (docs/idm-samples.md#the-built-in-script-library).
//
// IDM's managed.json of several samples runs a script of this name after a managed role is
// created, updated or deleted: it asks for a sync check of every user holding the role, so that
// what the role gives them reaches the target systems. idsync has no role-based provisioning (a
// role's properties never reach a user's synchronized values; roles are mapped in the mappings),
// so a role write changes nothing any user would synchronize: this script deliberately does
// nothing. It exists so that those samples load and run unchanged.
(function () {
    return null;
}());

// idsync's built-in roles/postOperation-roles.js (docs/idm-samples.md#the-built-in-script-library).
//
// IDM's default managed.json runs a script of this name after a managed role is created, updated
// or deleted. In IDM it keeps role-based provisioning current: it schedules the jobs that grant
// and remove a role at the start and end of its temporal constraints, and recomputes the
// effective roles of the role's members. idsync has neither temporal role grants nor effective
// roles (roles are mapped in the mappings), so after a role write there is nothing to schedule or
// recompute: this script deliberately does nothing. It exists so that a project using IDM's
// default managed.json loads and runs unchanged.
(function () {
    return null;
}());

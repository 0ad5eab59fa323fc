// idsync's built-in ui/onDelete-user-cleanup.js (docs/idm-samples.md#the-built-in-script-library).
//
// IDM's default managed.json runs a script of this name when a managed user is deleted. In IDM it
// removes what its user interface stored for that user (the user's notifications). idsync has no
// such user interface and stores nothing for a user outside the user object itself, its links and
// its audit records, which a delete already handles: there is nothing left to clean up, so this
// script deliberately does nothing. It exists so that a project using IDM's managed.json loads
// unchanged.
(function () {
    return null;
}());

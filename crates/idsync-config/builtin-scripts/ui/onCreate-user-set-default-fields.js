// idsync's built-in ui/onCreate-user-set-default-fields.js
// (docs/idm-samples.md#the-built-in-script-library).
//
// IDM's managed.json of several samples (historicalaccountlinking, multiaccountlinking) runs a
// script of this name as the onCreate hook of managed/user. What matters of it outside IDM's user
// interface: a user created without an account status is active, so that a mapping whose
// validSource asks for `accountStatus == 'active'` provisions it. The fields it adds for IDM's
// user interface (empty address fields, password-attempt counters, security questions) mean
// nothing to idsync and are not added.
(function () {
    if (!object.accountStatus) {
        object.accountStatus = "active";
    }
    return null;
}());

// idsync's built-in ui/onCreateUser.js, a module (docs/idm-samples.md#the-built-in-script-library).
//
// IDM's default managed.json calls `require('ui/onCreateUser').setDefaultFields(object)` in the
// onCreate hook of managed/user. It gives a new user the defaults IDM's user interface expects:
// `accountStatus` "active" when the user has none. (IDM also grants its internal role
// openidm-authorized there, in `authzRoles`; idsync's access control is conf/authentication.json
// and reads no such grant, so idsync does not add one.)
exports.setDefaultFields = function (object) {
    if (object.accountStatus === undefined || object.accountStatus === null || object.accountStatus === "") {
        object.accountStatus = "active";
    }
    return object;
};

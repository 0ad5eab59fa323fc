// idsync's built-in roles/onDelete-roles.js (docs/idm-samples.md#the-built-in-script-library).
//
// IDM's default managed.json runs a script of this name as the onDelete hook of managed/role: a
// role that is still granted to a user cannot be deleted, the delete fails with 409 Conflict.
//
// A user holds a role in its "roles" property, as IDM writes it: a list of references
// ({"_ref": "managed/role/<id>"}) or of plain paths ("managed/role/<id>"). Needs the `openidm`
// object (scripts calling the REST resources).
(function () {
    var roleId = object._id;
    var wanted = "managed/role/" + roleId;
    var holds = function (grant) {
        if (grant === null || grant === undefined) {
            return false;
        }
        var ref = typeof grant === "string" ? grant : grant._ref;
        return ref === wanted || ref === roleId;
    };
    var users = openidm.query("managed/user", { "_queryFilter": "/roles pr" }, ["_id", "roles"]);
    var results = (users && users.result) || [];
    var holders = [];
    for (var i = 0; i < results.length; i++) {
        var roles = results[i].roles;
        if (!Array.isArray(roles)) {
            roles = [roles];
        }
        for (var j = 0; j < roles.length; j++) {
            if (holds(roles[j])) {
                holders.push(results[i]._id);
                break;
            }
        }
    }
    if (holders.length > 0) {
        throw {
            "code": 409,
            "message": "Cannot delete the role " + roleId + ": it is still granted to "
                + holders.length + " user(s), e.g. managed/user/" + holders[0]
        };
    }
}());

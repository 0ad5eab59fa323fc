// idsync's built-in roles/conditionalRoles.js, a module (docs/idm-samples.md#the-built-in-script-library).
//
// IDM's default managed.json calls `require('roles/conditionalRoles')
// .updateConditionalGrantsForUser(object, 'roles')` in the onCreate and onUpdate hooks of
// managed/user. A role with a `condition` (a query filter over users, e.g.
// `/city eq "London"`) is granted to every user the condition matches and to no other: the
// user's grants of such roles are recomputed from the object being stored. A conditional grant
// is marked `"_refProperties": {"_grantType": "conditional"}`; grants made by hand (no grant
// type) are left alone, as IDM does. Conditions are evaluated by idsync's own filter engine
// (`__idsync.filterMatches`, the same as queries use).
function refOf(grant) {
    return typeof grant === "string" ? grant : (grant && grant._ref);
}

function isConditional(grant) {
    return grant !== null && typeof grant === "object" && grant._refProperties
        && grant._refProperties._grantType === "conditional";
}

exports.updateConditionalGrantsForUser = function (object, rolesPropName) {
    var prop = rolesPropName || "roles";
    var found = openidm.query("managed/role", { "_queryFilter": "/condition pr" }, ["_id", "condition"]);
    var conditional = ((found && found.result) || []).filter(function (role) {
        return typeof role.condition === "string" && role.condition !== "";
    });
    var current = object[prop];
    if (current === null || current === undefined) {
        current = [];
    } else if (!Array.isArray(current)) {
        current = [current];
    }
    var wanted = {};
    for (var i = 0; i < conditional.length; i++) {
        if (__idsync.filterMatches(conditional[i].condition, object)) {
            wanted["managed/role/" + conditional[i]._id] = true;
        }
    }
    var conditionalRefs = {};
    for (var c = 0; c < conditional.length; c++) {
        conditionalRefs["managed/role/" + conditional[c]._id] = true;
    }
    var kept = [];
    var held = {};
    for (var j = 0; j < current.length; j++) {
        var ref = refOf(current[j]);
        // A conditional grant of a role whose condition no longer matches (or that is no
        // longer conditional) goes; every other grant stays.
        if (isConditional(current[j]) && !wanted[ref]) {
            continue;
        }
        held[ref] = true;
        kept.push(current[j]);
    }
    for (var r in wanted) {
        if (wanted.hasOwnProperty(r) && !held[r] && conditionalRefs[r]) {
            kept.push({ "_ref": r, "_refProperties": { "_grantType": "conditional" } });
        }
    }
    if (kept.length > 0 || object[prop] !== undefined) {
        object[prop] = kept;
    }
    return object;
};

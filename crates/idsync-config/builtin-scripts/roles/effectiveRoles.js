// idsync's built-in roles/effectiveRoles.js (docs/idm-samples.md#the-built-in-script-library).
//
// IDM's default managed.json computes the virtual property `effectiveRoles` of managed/user with
// this script: either as a module, `require('roles/effectiveRoles').calculateEffectiveRoles(object,
// 'roles')`, or as the property's onRetrieve file with the variable `rolesPropName`. The
// effective roles are the user's grants (its `rolesPropName` property, a list of references
// {"_ref": "managed/role/<id>", "_refProperties": {...}} or of plain paths) that are in force now:
// a grant whose `_refProperties.temporalConstraints` lists time intervals
// ("<start>/<end>", ISO 8601) counts only while now lies in one of them. Each is answered as
// {"_ref": "<path>"}. idsync has no conditional roles of its own computing: a conditional grant is
// a grant like any other once roles/conditionalRoles has written it.
function inForce(grant, now) {
    var constraints = grant && grant._refProperties && grant._refProperties.temporalConstraints;
    if (!Array.isArray(constraints) || constraints.length === 0) {
        return true;
    }
    for (var i = 0; i < constraints.length; i++) {
        var duration = constraints[i] && constraints[i].duration;
        if (typeof duration !== "string" || duration.indexOf("/") < 0) {
            continue;
        }
        var parts = duration.split("/");
        var start = Date.parse(parts[0]);
        var end = Date.parse(parts[1]);
        if (!isNaN(start) && !isNaN(end) && start <= now && now < end) {
            return true;
        }
    }
    return false;
}

function directGrants(object, rolesPropName) {
    var grants = object ? object[rolesPropName] : undefined;
    if (grants === undefined && object && object._id !== undefined
            && typeof resourceName === "string" && resourceName.indexOf("managed/") === 0) {
        // A relationship the object was read without: ask its endpoint.
        try {
            var found = openidm.query(resourceName + "/" + rolesPropName, { "_queryFilter": "true" });
            grants = (found && found.result) || [];
        } catch (e) {
            grants = [];
        }
    }
    if (grants === null || grants === undefined) {
        return [];
    }
    return Array.isArray(grants) ? grants : [grants];
}

function calculateEffectiveRoles(object, rolesPropName) {
    var now = Date.now();
    var seen = {};
    var effective = [];
    var grants = directGrants(object, rolesPropName || "roles");
    for (var i = 0; i < grants.length; i++) {
        var grant = grants[i];
        var ref = typeof grant === "string" ? grant : (grant && grant._ref);
        if (typeof ref !== "string" || ref === "" || seen[ref] || !inForce(grant, now)) {
            continue;
        }
        seen[ref] = true;
        effective.push({ "_ref": ref });
    }
    return effective;
}

if (typeof exports === "object" && exports !== null) {
    exports.calculateEffectiveRoles = calculateEffectiveRoles;
}
if (typeof rolesPropName !== "undefined") {
    calculateEffectiveRoles(object, rolesPropName);
}

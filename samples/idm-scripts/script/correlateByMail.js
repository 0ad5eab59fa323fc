// correlationScript: the managed users with the HR row's e-mail (IDM returns the candidates).
var found = openidm.query("managed/user", {"_queryFilter": 'mail eq "' + source.email + '"'});
logger.debug("{} candidate(s) for {}", found.result.length, source.email);
found.result;

// A transform without a "source" property sees the whole HR row as `source`.
source.firstName + " " + source.lastName;

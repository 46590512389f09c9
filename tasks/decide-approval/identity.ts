/**
 * Who a caller is, as the names a person may have put in `requestedBy`: the IAM ARN itself, an IAM
 * user's name, or an assumed role's session name (with IAM Identity Center, the person's user
 * name or e-mail). The local runtime names the git user as an IAM user would be named.
 */
export function namesOf(callerArn: string): string[] {
  const names = [callerArn];
  const user = /^arn:aws[a-z-]*:iam::\d{12}:user\/(?:.*\/)?([^/]+)$/.exec(callerArn)?.[1];
  if (user) names.push(user);
  const session = /^arn:aws[a-z-]*:sts::\d{12}:assumed-role\/([^/]+)\/([^/]+)$/.exec(callerArn);
  if (session) names.push(session[2]!, `${session[1]}/${session[2]}`);
  return names;
}

/** Whether the caller is the person the execution names as its requester (compared without case). */
export function isRequester(requestedBy: string | null, callerArn: string): boolean {
  if (requestedBy === null) return false;
  const wanted = requestedBy.trim().toLowerCase();
  return namesOf(callerArn).some((name) => name.toLowerCase() === wanted);
}

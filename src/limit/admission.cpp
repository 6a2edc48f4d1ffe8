#include "floodgate/limit/admission.hpp"

namespace floodgate::limit {

// The headers first: they may raise the grant (the server charges more than reserved),
// and the settlement below counts the raised grant.
void LocalAdmission::settle(Grant& grant, const Answer& answer, TimePoint now) {
  limiter_.observe(answer.headers, now, grant);
  Cost actual{1, grant.cost.tokens};
  if (answer.used_tokens) {
    actual.tokens = *answer.used_tokens;
  } else if (answer.refused) {
    actual.tokens = 0;  // refused before any work: no tokens spent
  }
  // A 429 although the minute had room: a shorter period refused it, and the minute's
  // count does not hold it: its permits go back to the windows (not to the pace).
  if (answer.rate_limited && limiter_.minute_had_room(answer.headers, grant.cost)) {
    limiter_.reconcile_refused_by_shorter_period(grant, now);
  } else {
    limiter_.reconcile(grant, actual, now);
  }
}

}  // namespace floodgate::limit

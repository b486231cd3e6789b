<?php

declare(strict_types=1);

namespace Plasm\Transport;

/**
 * Carries one request to a node and brings back its answer. A transport reports only its own
 * failures (TransportException, TimeoutException); HTTP error statuses come back as Responses
 * for the Client to turn into ApiExceptions, retry, or accept.
 */
interface Transport
{
    public function send(Request $request): Response;
}

<?php

declare(strict_types=1);

namespace Plasm\Tests\Support;

/** Marks a receipt field ReceiptFactory::body() should leave out. */
final class Omit
{
}

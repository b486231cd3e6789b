<?php

declare(strict_types=1);

// The SDK's own autoloader (or Composer's, when generated) plus PSR-4 for Plasm\Tests\ -> tests/.
$composer = __DIR__ . '/../vendor/autoload.php';
require is_file($composer) ? $composer : __DIR__ . '/../autoload.php';

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'Plasm\\Tests\\')) {
        $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen('Plasm\\Tests\\'))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
